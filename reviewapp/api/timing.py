"""Server-Timing for a submission: where the server spent a request's time, phase by phase.

Browsers' developer tools and the wait-latency benchmark read the header
(https://www.w3.org/TR/server-timing/): ``check;dur=1.2, store;dur=3.4, …, app;dur=20.1``,
milliseconds each; ``app`` is the view's whole time, so what a client measures beyond it was
spent outside the view (the HTTP server, middleware, authentication, the network).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class Stopwatch:
    """Phase times of one request, in the order they ran."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def update(self, seconds: Mapping[str, float]) -> None:
        for name, value in seconds.items():
            self.add(name, value)

    def header(self) -> str:
        """The Server-Timing value, with ``app`` (the whole view so far) last."""
        phases = {**self.phases, "app": time.perf_counter() - self.started}
        return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in phases.items())


def parse(header: str) -> dict[str, float]:
    """A Server-Timing value as {name: milliseconds} (entries without a duration are left out)."""
    phases = {}
    for entry in filter(None, (part.strip() for part in header.split(","))):
        name, *params = (piece.strip() for piece in entry.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if key == "dur":
                phases[name] = float(value)
    return phases
