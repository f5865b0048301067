"""Long-lived objects out of the garbage collector's way, in server processes.

A web or worker process holds ~540,000 objects once Django, torch and a model are loaded; each
full collection of Python's cyclic garbage collector walks them all (measured: ~230 ms on this
project's 2-core machine), and stalls whichever request or batch is running when the collector
decides to run one. ``gc.freeze()`` moves every object alive now into
a permanent generation that collections skip (Python's documented use: after start-up, before
serving; Instagram's and gunicorn's advice for preforked servers). The web process (wsgi.py)
and worker pool processes (config/celery.py) turn it on at start; ``reviewapp.ml`` freezes
again after loading a model. A garbage collection runs first, so no garbage is frozen.
Other processes (tests, management commands) leave the collector as it is.
"""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)

_enabled = False


def long_lived_enable(what: str) -> None:
    """This is a server process: freeze what start-up loaded, and freeze after model loads."""
    global _enabled
    _enabled = True
    long_lived_freeze(what)


def long_lived_freeze(what: str) -> int:
    """Collect garbage, then freeze every live object (when enabled): how many are frozen."""
    if not _enabled:
        return 0
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info(
        "heap.frozen after=%s objects=%s ms=%.0f",
        what,
        frozen,
        (time.perf_counter() - started) * 1000,
    )
    return frozen
