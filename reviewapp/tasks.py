"""Celery tasks: thin wrappers that take ids and call one service each; nothing imports them.

Task names are explicit and stable (pinned by a test, listed in ``reviewapp.jobs``, which is how
services send them): renaming one would strand queued messages.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError

from reviewapp import jobs
from reviewapp.intake import batching, claims, outbox
from reviewapp.models import Alias, Project
from reviewapp.monitoring import services as monitoring
from reviewapp.review import alerts, webhooks
from reviewapp.rollout import services as rollout
from reviewapp.training import edge_export
from reviewapp.training import services as training
from reviewapp.training import triggers as retraining

logger = logging.getLogger(__name__)


# Prediction tasks: redelivered when a worker dies, retried while the database restarts.
PREDICTION_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 12,
}


@shared_task(bind=True, name=jobs.PREDICT_ITEM, **PREDICTION_TASK)
def predict_item(self, item_id: int) -> str:
    """Predict the item in a batch with other due items (issue 17), store and route them."""
    status = batching.items_predict_due(first=item_id).status_of(item_id)
    if status == "claimed-elsewhere":
        # Another worker's lease holds the item. Should that worker have died (this may be the
        # redelivery of its task), the lease lapses: look again then.
        raise self.retry(countdown=claims.lease_seconds())
    return status


@shared_task(name=jobs.PREDICT_BATCH, **PREDICTION_TASK)
def predict_batch() -> int:
    """Predict a batch of due items; a full batch sends the next one (a backlog drains itself)."""
    report = batching.items_predict_due()
    if report.size >= settings.HANDOFF_PREDICT_BATCH:
        jobs.job_send(jobs.PREDICT_BATCH)
    return report.size


@shared_task(name=jobs.SWEEP_PREDICTIONS, acks_late=True)
def sweep_predictions() -> int:
    """Re-send overdue predictions (broker was down, message lost); scheduled by beat."""
    return outbox.predictions_sweep()


@shared_task(name=jobs.TRAIN_MODEL, acks_late=True, reject_on_worker_lost=True)
def train_model(run_id: int) -> str:
    """Execute one queued training run (routed to the `training` queue); redelivery is a no-op."""
    version = training.training_run_execute(run_id=run_id)
    return f"v{version.number}" if version is not None else "not-registered"


@shared_task(name=jobs.REAP_TRAINING_RUNS, acks_late=True)
def reap_training_runs(stale_seconds: float | None = None) -> int:
    """Fail training runs whose worker stopped sending heartbeats."""
    stale = timedelta(seconds=stale_seconds) if stale_seconds else None
    return len(training.training_runs_reap(stale_after=stale))


@shared_task(name=jobs.RETRAIN_PROJECT, acks_late=True)
def retrain_project(project_id: int, trigger: str = "schedule") -> int | None:
    """Scheduled or drift-triggered retraining of one project; refused while a run is active."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        logger.warning("retrain_project.missing project=%s", project_id)
        return None
    run = retraining.training_trigger(project=project, trigger=trigger, reason=trigger)
    return run.pk if run is not None else None


@shared_task(name=jobs.CHECK_RETRAIN_TRIGGERS, acks_late=True)
def check_retrain_triggers() -> list[int]:
    """Start runs in projects that collected enough new corrections."""
    return retraining.training_check_corrections()


@shared_task(name=jobs.ROLLOUT_CHECK, acks_late=True)
def rollout_check(project_id: int | None = None) -> list[dict]:
    """Periodic rollout check (Celery beat): sequential demotion check, auto-promotion."""
    projects = (
        Project.objects.all() if project_id is None else Project.objects.filter(pk=project_id)
    )
    return [rollout.project_check(project=project) for project in projects]


@shared_task(
    bind=True,
    name=jobs.DELIVER_WEBHOOK,
    acks_late=True,
    autoretry_for=webhooks.RETRYABLE,
    retry_backoff=settings.HANDOFF_WEBHOOK_BACKOFF_SECONDS,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=settings.HANDOFF_WEBHOOK_MAX_RETRIES,
)
def deliver_webhook(self, delivery_id: int) -> str:
    """POST one webhook delivery; retried with exponential backoff, dead after the last retry."""
    final = self.request.retries >= self.max_retries
    return webhooks.delivery_attempt(delivery_id=delivery_id, final=final)


@shared_task(name=jobs.DRIFT_CHECK, acks_late=True)
def drift_check(project_id: int) -> list[int]:
    """Run the drift checks of one project; returns the ids of the alarms it opened."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        logger.warning("drift_check.missing project=%s", project_id)
        return []
    return [alarm.pk for alarm in monitoring.drift_check_run(project=project)]


@shared_task(name=jobs.EXPORT_EDGE_BUNDLE, acks_late=True, reject_on_worker_lost=True)
def export_edge_bundle(version_id: int, actor_id: int | None = None) -> str:
    """Export a model version to an ONNX edge bundle (asked for on its page)."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    return edge_export.edge_bundle_export_run(version_id=version_id, actor=actor)


@shared_task(name=jobs.DRIFT_CHECK_ALL, acks_late=True)
def drift_check_all() -> int:
    """Celery beat: enqueue a drift check for every project that has a champion."""
    ids = list(
        Project.objects.filter(
            aliases__alias=Alias.CHAMPION, aliases__ended_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for project_id in ids:
        jobs.job_send(jobs.DRIFT_CHECK, project_id)
    return len(ids)


@shared_task(
    name=jobs.ALERT_NOTIFY,
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),  # the mail relay
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=6,
)
def alert_notify(alert_id: int, event: str) -> str:
    """Push an alert event: signed webhook deliveries and an e-mail to the project's lists."""
    return alerts.alert_notify(alert_id=alert_id, event=event)


@shared_task(name=jobs.ALERTS_ESCALATE, acks_late=True)
def alerts_escalate() -> list[int]:
    """Celery beat: escalate open alerts past their project's deadline."""
    return alerts.alerts_escalate_due()
