"""A dynamic batcher for requests that wait for their prediction (issue 17).

Requests in one process hand the items they just stored, claimed in the same INSERT, to one
batcher thread, which predicts them in batches of at most ``max_batch`` with one forward each
(``batching.items_predict_held``: no claim, nothing read back) and hands each request its own
answer: the item's status and the outcome or review task the batch wrote for it. An idle
batcher starts on a lone request at once (no added wait); when requests came together in the
last batch, it waits at most ``max_wait`` for more, so a flood is served with the throughput of
large batches while one user waits for one forward only (the "dynamic batching" of serving
systems, e.g. Triton's max_queue_delay). The requests never go through the Celery queue, so a
backlog there does not delay them.

The batcher thread runs its forwards on ``threads`` torch threads (HANDOFF_API_PREDICT_THREADS,
1 by default): the web process shares the cores with prediction workers, and a forward split
over threads waits for its slowest one, which the kernel may have parked behind a worker
(measured: a few ms on one thread, hundreds on two while the cores are busy; docs/benchmarks.md,
`wait-latency`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.db import close_old_connections, connection

from reviewapp import jobs, ml
from reviewapp.intake import batching
from reviewapp.models import Item, Outcome, ReviewTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What a batch did for one request's item: its status (as ``BatchReport.status_of``) and
    the model's decision or the review task it wrote (None when it wrote neither in bulk)."""

    status: str
    outcome: Outcome | None = None
    task: ReviewTask | None = None
    # Seconds the item waited for its batch ("queue") and the batch's phases ("predict":
    # decode and forward, "write": its transaction), for the response's Server-Timing.
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class _Request:
    item: Item
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.perf_counter)


def held_items_predict(items: list[Item]) -> batching.BatchReport:
    """Predict items their requests stored claimed (``batching.items_predict_held``)."""
    return batching.items_predict_held(items=items)


class Batcher:
    """Gathers item ids from waiting requests into batches predicted on one thread."""

    def __init__(
        self,
        *,
        max_batch: int,
        max_wait: float,
        predict: Callable[[list[Item]], batching.BatchReport] = held_items_predict,
        threads: int = 0,
    ) -> None:
        self.max_batch, self.max_wait, self._predict = max(1, max_batch), max_wait, predict
        self.threads = threads  # torch threads of the batcher's forwards; 0 leaves torch's own
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.batches = 0  # how many forwards this batcher ran (observable by tests and logs)
        self.items = 0
        self._last_size = 0

    def submit(self, item: Item) -> Future:
        """Queue an item the caller holds; the future's result is its ``Answer``.

        A future cancelled before its batch starts takes its item out of the batch.
        """
        self._ensure_thread()
        request = _Request(item=item)
        self._queue.put(request)
        return request.future

    def _ensure_thread(self) -> None:
        with self._lock:
            # A forked process (a gunicorn worker) does not inherit the parent's thread.
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, name="predict-batcher", daemon=True
                )
                self._thread.start()

    def _gather(self, first: _Request) -> list[_Request]:
        batch = [first]
        wait = self.max_wait if self._last_size > 1 or not self._queue.empty() else 0.0
        deadline = time.monotonic() + wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                request = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            batch.append(request)
        return batch

    def _loop(self) -> None:
        ml.forward_threads_set(self.threads)
        while True:
            batch = self._gather(self._queue.get())
            self._last_size = len(batch)
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        batch = [request for request in batch if request.future.set_running_or_notify_cancel()]
        if not batch:
            return
        items = list({request.item.pk: request.item for request in batch}.values())
        started = time.perf_counter()
        close_old_connections()
        held = jobs.SendsHeld()  # the batch's follow-up jobs go to the broker after the answers
        try:
            self._answer(batch, items, started=started, held=held)
        finally:
            held.release()

    def _answer(
        self, batch: list[_Request], items: list[Item], *, started: float, held: jobs.SendsHeld
    ) -> None:
        """Predict the batch's items and give each request its answer (or the batch's error)."""
        try:
            with held:
                report = self._predict(items)
        except Exception as exc:
            logger.exception("api.batcher.failed size=%s", len(items))
            connection.close()  # never reuse a connection left in an unknown state
            for request in batch:
                request.future.set_exception(exc)
            return
        self.batches += 1
        self.items += len(items)
        logger.info("api.batcher.batch size=%s predicted=%s", len(items), len(report.predicted))
        for request in batch:
            item_id = request.item.pk
            request.future.set_result(
                Answer(
                    status=report.status_of(item_id),
                    outcome=report.outcomes.get(item_id),
                    task=report.tasks.get(item_id),
                    seconds={"queue": started - request.submitted, **report.seconds},
                )
            )
