"""Verify Handoff's webhook signatures (Stripe's scheme), without importing the server.

Every delivery carries ``Handoff-Signature: t=<unix seconds>,v1=<hex>``, where hex is
HMAC-SHA256(secret, ``"<t>." + raw body``), and ``Handoff-Event-Id: <uuid>``. A receiver
recomputes the HMAC over the raw body (before any JSON parsing), compares in constant time, and
refuses timestamps further than ``tolerance`` seconds from now; remembering the event ids it has
seen (not done here: that needs the receiver's storage) makes a captured request useless.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from handoff_client.errors import InvalidSignature

SIGNATURE_HEADER = "Handoff-Signature"
EVENT_HEADER = "Handoff-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A ``Handoff-Signature`` value for ``body`` (to test a receiver)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise ValueError("no t= or v1= in the signature header")
    return timestamp, signatures


def verify_signature(
    *,
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs this exact ``body`` with ``secret``, within ``tolerance`` s."""
    try:
        timestamp, signatures = _parse(header)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body)
    # Check every v1 (a rotated secret may sign twice) without stopping at the first mismatch.
    matches = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    return any(matches)


def webhook_event(
    *,
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The delivery's JSON event, after checking its signature; raises InvalidSignature."""
    if not verify_signature(secret=secret, header=header, body=body, tolerance=tolerance, now=now):
        raise InvalidSignature(
            "the signature does not match this body and secret, or its timestamp is too old",
            code="invalid_signature",
        )
    return json.loads(body)
