"""The job launcher: services enqueue Celery tasks by their pinned names, never by importing tasks.

``reviewapp.tasks`` registers each task under one of these names (a test pins them, and renaming
one would strand queued messages). Sending by name keeps the import direction one way: services
know what to ask for, and only the task layer knows how the work is run. Routing (the training
queue) comes from ``CELERY_TASK_ROUTES``, which applies to a send by name as to any other.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

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
    """Send the task ``name`` with positional ``args`` now; options go to ``send_task``."""
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}")
    current_app.send_task(name, args=args, **options)


def job_send_on_commit(name: str, *args: object, **options: object) -> None:
    """Send the task once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: job_send(name, *args, **options))
