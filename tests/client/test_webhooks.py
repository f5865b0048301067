"""The client's webhook check accepts what the server signs and refuses everything else."""

from __future__ import annotations

import json

import pytest
from handoff_client import InvalidSignature, sign, verify_signature, webhook_event

from reviewapp.review import webhooks as server

SECRET = "whsec_test-secret"
BODY = json.dumps(
    {"type": "outcome.final", "item": {"id": 7}, "outcome": {"label": "cat"}}
).encode()
NOW = 1_750_000_000


def _server_header(body: bytes = BODY, *, secret: str = SECRET, timestamp: int = NOW) -> str:
    return server.signature_header(secret=secret, body=body, timestamp=timestamp)


def test_accepts_what_the_server_signs():
    header = _server_header()
    assert verify_signature(secret=SECRET, header=header, body=BODY, now=NOW + 10)
    event = webhook_event(secret=SECRET, header=header, body=BODY, now=NOW)
    assert event["outcome"] == {"label": "cat"}


@pytest.mark.parametrize(
    ("header", "body", "now"),
    [
        pytest.param(_server_header(), BODY.replace(b"cat", b"dog"), NOW, id="tampered body"),
        pytest.param(_server_header(secret="whsec_other"), BODY, NOW, id="wrong secret"),
        pytest.param(_server_header(), BODY, NOW + 301, id="stale timestamp"),
        pytest.param(_server_header(), BODY, NOW - 301, id="timestamp from the future"),
        pytest.param("v1=" + _server_header().split("v1=")[1], BODY, NOW, id="no timestamp"),
        pytest.param(f"t={NOW}", BODY, NOW, id="no signature"),
        pytest.param("garbage", BODY, NOW, id="garbage"),
    ],
)
def test_refuses_anything_else(header, body, now):
    assert not verify_signature(secret=SECRET, header=header, body=body, now=now)
    with pytest.raises(InvalidSignature) as caught:
        webhook_event(secret=SECRET, header=header, body=body, now=now)
    assert caught.value.code == "invalid_signature"


def test_a_forged_timestamp_with_the_old_signature_is_refused():
    signature = _server_header().split("v1=")[1]
    forged = f"t={NOW + 100},v1={signature}"
    assert not verify_signature(secret=SECRET, header=forged, body=BODY, now=NOW + 100)


def test_the_tolerance_is_the_callers():
    header = _server_header()
    assert verify_signature(secret=SECRET, header=header, body=BODY, now=NOW + 3000, tolerance=3600)
    assert not verify_signature(secret=SECRET, header=header, body=BODY, now=NOW + 61, tolerance=60)


def test_the_server_accepts_what_the_client_signs():
    header = sign(secret=SECRET, body=BODY, timestamp=NOW)
    assert header == _server_header()
    assert server.signature_verify(secret=SECRET, header=header, body=BODY, now=NOW)
