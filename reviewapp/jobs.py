"""The job launcher: services enqueue Celery tasks by their pinned names, never by importing tasks.

``reviewapp.tasks`` registers each task under one of these names (a test pins them, and renaming
one would strand queued messages). Sending by name keeps the import direction one way: services
know what to ask for, and only the task layer knows how the work is run. Routing (the training
queue) comes from ``CELERY_TASK_ROUTES``, which applies to a send by name as to any other.
"""

from __future__ import annotations

import logging
import threading

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

_local = threading.local()  # this thread's held sends (see ``SendsHeld``)

PREDICT_ITEM = "reviewapp.predict_item"
PREDICT_BATCH = "reviewapp.predict_batch"
SWEEP_PREDICTIONS = "reviewapp.sweep_predictions"
TRAIN_MODEL = "reviewapp.train_model"
REAP_TRAINING_RUNS = "reviewapp.reap_training_runs"
RETRAIN_PROJECT = "reviewapp.retrain_project"
CHECK_RETRAIN_TRIGGERS = "reviewapp.check_retrain_triggers"
ROLLOUT_CHECK = "reviewapp.rollout_check"
DELIVER_WEBHOOK = "reviewapp.deliver_webhook"
DRIFT_CHECK = "reviewapp.drift_check"
DRIFT_CHECK_ALL = "reviewapp.drift_check_all"
EXPORT_EDGE_BUNDLE = "reviewapp.export_edge_bundle"
ALERT_NOTIFY = "reviewapp.alert_notify"
ALERTS_ESCALATE = "reviewapp.alerts_escalate"

TASK_NAMES = (
    PREDICT_ITEM,
    PREDICT_BATCH,
    SWEEP_PREDICTIONS,
    TRAIN_MODEL,
    REAP_TRAINING_RUNS,
    RETRAIN_PROJECT,
    CHECK_RETRAIN_TRIGGERS,
    ROLLOUT_CHECK,
    DELIVER_WEBHOOK,
    DRIFT_CHECK,
    DRIFT_CHECK_ALL,
    EXPORT_EDGE_BUNDLE,
    ALERT_NOTIFY,
    ALERTS_ESCALATE,
)


def job_send(name: str, *args: object, **options: object) -> None:
    """Send the task ``name`` with positional ``args`` now; options go to ``send_task``.

    Within a ``SendsHeld`` block on this thread, the send waits for the block's release.
    """
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}")
    held = getattr(_local, "held", None)
    if held is not None:
        held.append((name, args, options))
        return
    current_app.send_task(name, args=args, **options)


class SendsHeld:
    """Job sends made on this thread inside ``with`` wait until ``release()``.

    For work that somebody is waiting on (the API's `wait` batcher): its transaction's
    follow-up jobs (a drift check, webhook deliveries) go to the broker after the answer, not
    before it. A broker round trip is ~1 ms, but a process's first one opens the connection
    (~130 ms measured). The sends are still made, in order, by the same thread.
    """

    def __init__(self) -> None:
        self.sends: list[tuple[str, tuple, dict]] = []

    def __enter__(self) -> SendsHeld:
        _local.held = self.sends
        return self

    def __exit__(self, *exc_info: object) -> None:
        _local.held = None

    def release(self) -> None:
        """Send what was held (a failed send is logged, the others still go)."""
        sends, self.sends = self.sends, []
        for name, args, options in sends:
            try:
                current_app.send_task(name, args=args, **options)
            except Exception:
                logger.exception("jobs.held_send_failed task=%s args=%s", name, args)


def job_send_on_commit(name: str, *args: object, **options: object) -> None:
    """Send the task once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: job_send(name, *args, **options))
