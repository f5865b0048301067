"""Exceptions: every refusal of the API becomes one, carrying the API's error code and message.

The API answers every failure with ``{"error": {"code", "message", "fields"?}}``; the HTTP status
picks the subclass, so callers can catch ``Conflict`` or ``NotFound`` without reading codes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class HandoffError(Exception):
    """An API refusal or a failure to reach the API.

    ``code`` and ``message`` are the API's (``"conflict"``, ``"not_found"``, ``"invalid"``, …);
    ``status`` is the HTTP status (None when no answer came back); ``fields`` holds per-field
    validation errors when the API sent them; ``attempts`` is how many requests were made.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status: int | None = None,
        fields: dict[str, Any] | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}
        self.attempts = attempts

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no answer"
        tries = f", gave up after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.code}: {self.message} ({where}{tries})"


class ValidationFailed(HandoffError):
    """400: the request was refused as invalid (``fields`` says which field, when known)."""


class AuthError(HandoffError):
    """401/403: the token is missing, unknown or revoked, or may not do this."""


class NotFound(HandoffError):
    """404: unknown project or item, or not one of this token's (the API does not say which)."""


class Conflict(HandoffError):
    """409: an idempotency key was reused for different content; nothing was stored."""


class PayloadTooLarge(HandoffError):
    """413: a file or the request is over the server's limit."""


class RateLimited(HandoffError):
    """429: throttled, still after the retries; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(HandoffError):
    """5xx: the server failed, still after the retries."""


class HandoffConnectionError(HandoffError):
    """The API could not be reached (connection refused, reset, timed out), still after retries."""


class DecisionTimeout(HandoffError, TimeoutError):
    """No decision on the item within the time the caller allowed."""


class InvalidSignature(HandoffError):
    """A webhook request whose signature does not match, or whose timestamp is too old."""


_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_BY_STATUS: dict[int, type[HandoffError]] = {
    400: ValidationFailed,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: RateLimited,
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (a number or an HTTP date), None when absent."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _text_message(response: httpx.Response) -> str:
    """A short message from a non-JSON error body (an HTML page's title, or the text's start)."""
    text = response.text.strip()
    title = _TITLE.search(text)
    if title:
        return " ".join(title.group(1).split())
    return "" if text.startswith("<") else text[:300]


def error_from_response(response: httpx.Response, *, attempts: int = 1) -> HandoffError:
    """The exception for a non-2xx answer, with the API's code and message when it sent them."""
    status = response.status_code
    code, message, fields = f"http_{status}", response.reason_phrase or "error", None
    try:
        body = response.json()
    except ValueError:
        message = _text_message(response) or message
    else:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            fields = error.get("fields") if isinstance(error.get("fields"), dict) else None
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else HandoffError)
    kwargs: dict[str, Any] = {"code": code, "status": status, "fields": fields}
    if cls is RateLimited:
        kwargs["retry_after"] = retry_after_seconds(response)
    return cls(message, attempts=attempts, **kwargs)
