"""A running Handoff for fault tests: gunicorn, celery worker and beat on a private database
(a throwaway PostgreSQL cluster) and broker (a private redis-server), plus an HTTP client."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from tests.resilience.servers import ROOT, ProcessGroup, free_port, port_open, wait_until


@dataclass
class Stack:
    """The environment shared by every process of one test, and what they started."""

    database_url: str
    broker: object  # RedisServer
    folder: Path
    group: ProcessGroup
    seeded: dict = field(default_factory=dict)
    artifact: dict = field(default_factory=dict)  # path, sha256, metadata of the model
    web_port: int = 0

    @property
    def media(self) -> Path:
        return self.folder / "media"

    def env(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_BROKER")}
        env.update(
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=self.broker.url,
            MEDIA_ROOT=str(self.media),
            ARTIFACTS_ROOT=str(self.folder / "artifacts"),
            HANDOFF_VAR_DIR=str(self.folder / "var"),
            HANDOFF_ENV="development",
            DEBUG="0",
            LOG_LEVEL="INFO",
            DB_CONN_MAX_AGE="60",
            HANDOFF_API_THROTTLE_RATE="100000/min",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [sys.executable, "manage.py", *args]
        return subprocess.run(
            command, cwd=ROOT, env=self.env(), capture_output=True, text=True, check=check,
            timeout=300,
        )  # fmt: skip

    def seed(self, spec: dict) -> dict:
        command = [sys.executable, "-m", "tests.resilience.seed_stack", json.dumps(spec)]
        done = subprocess.run(
            command, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=300
        )
        if done.returncode:
            raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
        self.seeded = json.loads(done.stdout.strip().splitlines()[-1])
        return self.seeded

    def start_web(self, *, workers: int = 2, name: str = "web", **env: str):
        """gunicorn on a free port; returns the process once it accepts connections."""
        self.web_port = free_port()
        command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi"]
        command += ["--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers)]
        command += ["--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning"]
        process = self.group.start(name, command, env=self.env(**env))
        wait_until(lambda: port_open(self.web_port), timeout=60, what="gunicorn")
        return process

    def start_worker(self, *, name: str = "worker", concurrency: int = 1, **env: str):
        """A real prefork `celery worker` on the default queue; returns once it is ready."""
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default"]
        command += ["-c", str(concurrency), "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"]
        command += ["--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        process = self.group.start(name, command, env=self.env(**env))
        wait_until(lambda: "ready." in process.log() or not process.alive(), timeout=90, what=name)
        if not process.alive():
            raise RuntimeError(f"{name} died:\n{process.log()[-3000:]}")
        return process

    def start_beat(self, *, sweep_seconds: int = 2):
        """`celery beat` with the database scheduler and a fast prediction sweep."""
        self.manage("beat_setup", "--prediction-seconds", str(sweep_seconds))
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
        command += ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
        command += ["--pidfile=", "-s", str(self.folder / "beat-schedule")]
        return self.group.start("beat", command, env=self.env())

    def sql(self, query: str, *params) -> list[tuple]:
        """Run one query on the stack's database (a fresh connection each time)."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def scalar(self, query: str, *params):
        return self.sql(query, *params)[0][0]

    def http(self) -> Http:
        return Http(self.web_port)


def png(seed: int, size: int = 24) -> bytes:
    """A small, unique, valid PNG (its pixels encode `seed`)."""
    image = Image.new("L", (size, size), color=seed % 256)
    for index in range(4):
        image.putpixel((index, 0), (seed >> (8 * index)) & 0xFF)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Http:
    """A plain HTTP/1.1 client with a cookie jar (session + CSRF) and an API token."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.token = ""

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, payload, dict(response.getheaders())

    def _form_headers(self) -> dict:
        return {
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
            "Referer": f"http://127.0.0.1:{self.port}/",
        }

    def post_form(self, path: str, fields: dict):
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._form_headers()}
        return self.request("POST", path, urllib.parse.urlencode(fields).encode(), headers)

    def post_files(self, path: str, field_name: str, files: list[tuple[str, bytes]], **fields):
        body, content_type = multipart(field_name, files, fields)
        headers = {"Content-Type": content_type}
        if not self.token:
            headers.update(self._form_headers())
            if "csrfmiddlewaretoken" not in fields:
                body, content_type = multipart(
                    field_name, files, {**fields, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
                )
                headers["Content-Type"] = content_type
        return self.request("POST", path, body, headers)

    def log_in(self, username: str, password: str) -> None:
        self.request("GET", "/accounts/login/")
        status, _, _ = self.post_form(
            "/accounts/login/", {"username": username, "password": password}
        )
        if status != 302:
            raise RuntimeError(f"login failed for {username}: HTTP {status}")

    def submit(self, slug: str, data: bytes, *, key: str = "", name: str = "image.png"):
        """POST one image to the API; returns (status, parsed JSON or raw bytes)."""
        fields = {"key": key} if key else {}
        status, payload, _ = self.post_files(
            f"/api/v1/projects/{slug}/items/", "file", [(name, data)], **fields
        )
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload


def multipart(field_name: str, files: list[tuple[str, bytes]], fields: dict):
    """A multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            .encode()
        )  # fmt: skip
    for filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
