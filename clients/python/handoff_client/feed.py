"""The outcomes feed: final outcomes oldest first, one cursor page after the other.

The API's ``next`` link is never null: once caught up it points at the position after the last
outcome seen, so a poller keeps asking it. This iterator takes the ``cursor`` parameter out of
that link and sends it with its own base URL and filters (a proxy in front of the server may
have made the absolute link unusable). ``OutcomeFeed.cursor`` is where to resume next time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from handoff_client.models import FeedOutcome
from handoff_client.transport import Transport


def cursor_of(link: str | None) -> str | None:
    """The ``cursor`` query parameter of a feed link (None when it has none)."""
    if not link:
        return None
    values = parse_qs(urlsplit(link).query).get("cursor")
    return values[0] if values else None


class OutcomeFeed:
    """Iterates the outcomes feed from ``cursor`` (or the start).

    Without ``follow`` it stops when a page comes back empty (caught up). With ``follow`` it
    keeps polling every ``poll_interval`` seconds, forever or until ``stop()`` returns True.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        params: dict[str, Any],
        cursor: str | None = None,
        follow: bool = False,
        poll_interval: float = 5.0,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self._transport = transport
        self._params = {k: v for k, v in params.items() if v not in (None, "")}
        self.cursor = cursor
        self.pages = 0
        self._follow = follow
        self._poll_interval = poll_interval
        self._stop = stop or (lambda: False)

    def page(self) -> list[FeedOutcome]:
        """Fetch one page from the current cursor and move the cursor past it."""
        params = dict(self._params)
        if self.cursor:
            params["cursor"] = self.cursor
        body = self._transport.json("GET", "outcomes/", params=params)
        self.pages += 1
        self.cursor = cursor_of(body.get("next")) or self.cursor
        return [FeedOutcome.from_json(row) for row in body.get("results", [])]

    def __iter__(self) -> Iterator[FeedOutcome]:
        while True:
            rows = self.page()
            yield from rows
            if rows:
                continue
            if not self._follow or self._stop():
                return
            self._transport.sleep(self._poll_interval)
