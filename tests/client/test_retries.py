"""Retries against a tiny scripted HTTP server: Retry-After honoured, backoff, giving up."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from handoff_client import (
    Client,
    HandoffConnectionError,
    RateLimited,
    RetryPolicy,
    ServerError,
    ValidationFailed,
)

PROJECTS = [
    {"slug": "traps", "name": "Traps", "description": "", "labels": ["cat"], "stage": "shadow"}
]
UNAVAILABLE = {"error": {"code": "unavailable", "message": "down for maintenance"}}


class ScriptedServer(ThreadingHTTPServer):
    """Answers each request with the next (status, headers, body) of its script (the last one
    repeats), and records when each request came."""

    def __init__(self, script: list[tuple[int, dict[str, str], object]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.arrivals: list[float] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: ScriptedServer = self.server  # type: ignore[assignment]
        index = min(len(server.arrivals), len(server.script) - 1)
        server.arrivals.append(time.monotonic())
        server.paths.append(self.path)
        status, headers, body = server.script[index]
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator:
    servers = []

    def start(*script):
        server = ScriptedServer(list(script))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_503_with_retry_after_is_waited_out_then_retried(scripted):
    server = scripted((503, {"Retry-After": "1"}, UNAVAILABLE), (200, {}, PROJECTS))
    with Client(server.url, "hnd_test", retry=RetryPolicy(attempts=3, backoff=0.01)) as client:
        projects = client.projects()
    assert [p.slug for p in projects] == ["traps"]
    assert server.paths == ["/api/v1/projects/", "/api/v1/projects/"]
    assert server.arrivals[1] - server.arrivals[0] >= 0.95  # Retry-After, not the 0.01 s backoff


def test_it_gives_up_after_the_last_attempt_with_the_servers_error(scripted):
    server = scripted((503, {}, UNAVAILABLE))
    delays = []
    retry = RetryPolicy(attempts=3, backoff=0.2)
    with Client(server.url, "hnd_test", retry=retry, sleep=delays.append) as client:
        with pytest.raises(ServerError) as caught:
            client.projects()
    error = caught.value
    assert len(server.arrivals) == 3 and error.attempts == 3
    assert (error.status, error.code, error.message) == (503, "unavailable", "down for maintenance")
    assert "gave up after 3 attempts" in str(error)
    assert 0.1 <= delays[0] <= 0.2 and 0.2 <= delays[1] <= 0.4  # exponential, with jitter


def test_throttling_is_retried_and_reported_with_its_hint(scripted):
    server = scripted(
        (429, {"Retry-After": "7"}, {"error": {"code": "throttled", "message": "slow"}})
    )
    delays = []
    with Client(server.url, "t", retry=RetryPolicy(attempts=2), sleep=delays.append) as client:
        with pytest.raises(RateLimited) as caught:
            client.projects()
    assert delays == [7.0] and caught.value.retry_after == 7.0 and caught.value.code == "throttled"


def test_a_refusal_is_not_retried(scripted):
    server = scripted(
        (400, {}, {"error": {"code": "invalid", "message": "no", "fields": {"x": ["bad"]}}})
    )
    with Client(server.url, "t", retry=RetryPolicy(attempts=5), sleep=lambda s: None) as client:
        with pytest.raises(ValidationFailed) as caught:
            client.projects()
    assert len(server.arrivals) == 1 and caught.value.fields == {"x": ["bad"]}


def test_connection_errors_are_retried_then_raised():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delays = []
    retry = RetryPolicy(attempts=3, backoff=0.1)
    with Client(f"http://127.0.0.1:{port}", "t", retry=retry, sleep=delays.append) as client:
        with pytest.raises(HandoffConnectionError) as caught:
            client.projects()
    assert caught.value.attempts == 3 and caught.value.status is None and len(delays) == 2
