"""HTTP with retries: exponential backoff with jitter on 429, 5xx and connection errors.

A retried request is safe to repeat: reads are, and every upload carries an idempotency key, so
a batch the server stored before its answer got lost returns the same items the second time.
``Retry-After`` (seconds or an HTTP date) replaces the computed delay when the server sends it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from handoff_client.errors import (
    HandoffConnectionError,
    HandoffError,
    error_from_response,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attempt n (from 1) waits ``min(max_delay, backoff * 2**(n-1))``, scaled by a random factor in
    [0.5, 1] so that many clients do not retry in step; a ``Retry-After`` header wins (capped at
    ``max_retry_after``).
    """

    attempts: int = 5
    backoff: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_delay, self.backoff * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


class Transport:
    """An httpx client that authenticates, retries and turns refusals into exceptions."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        retry: RetryPolicy,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        self.retry = retry
        self.sleep = sleep
        self.http = http or httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "handoff-client/0.1"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def send(self, method: str, url: str, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        """The response to a request, retried as the policy says; raises HandoffError on refusal.

        With ``stream=True`` the body is not read: the caller iterates it and must close it.
        """
        attempt = 0
        while True:
            attempt += 1
            request = self.http.build_request(method, url, **kwargs)
            try:
                response = self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt >= self.retry.attempts:
                    message = f"{method} {request.url}: {exc!r}"
                    raise HandoffConnectionError(
                        message, code="connection_error", attempts=attempt
                    ) from exc
                self._wait(attempt, None, f"{type(exc).__name__}", request)
                continue
            if response.is_success:
                return response
            response.read()
            response.close()
            if response.status_code in RETRY_STATUSES and attempt < self.retry.attempts:
                self._wait(attempt, retry_after_seconds(response), response.status_code, request)
                continue
            raise error_from_response(response, attempts=attempt)

    def _wait(self, attempt: int, retry_after: float | None, why: object, request) -> None:
        delay = self.retry.delay(attempt, retry_after)
        logger.info(
            "handoff_client.retry method=%s url=%s reason=%s attempt=%d delay=%.2fs",
            request.method,
            request.url,
            why,
            attempt,
            delay,
        )
        self.sleep(delay)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """The decoded JSON body of a request."""
        response = self.send(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise HandoffError(
                f"{method} {url}: the answer is not JSON", code="bad_response"
            ) from exc
