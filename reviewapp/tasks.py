"""Celery tasks: thin wrappers that take ids, re-fetch, and call a service.

Task names are explicit and stable (pinned by a test): renaming one would strand queued
messages.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings

from reviewapp import ml, monitoring, services, webhooks
from reviewapp.models import Item, Prediction

logger = logging.getLogger(__name__)


@shared_task(name="reviewapp.predict_item", acks_late=True, reject_on_worker_lost=True)
def predict_item(item_id: int) -> str:
    """Predict one item with its project's champion, store the prediction, route it."""
    item = Item.objects.select_related("project").filter(pk=item_id).first()
    if item is None:
        logger.warning("predict_item.missing item=%s", item_id)
        return "missing"
    champion = services.champion_of(item.project)
    if champion is None:
        logger.warning("predict_item.no_champion item=%s project=%s", item_id, item.project.slug)
        return "no-champion"
    if item.predictions.filter(model_version=champion).exists():
        prediction = item.predictions.get(model_version=champion)
        services.prediction_route(
            prediction=prediction, challenger_prediction=_challenger_predict(item)
        )
        return "already-predicted"
    prediction = _predict_with(item=item, version=champion)
    services.prediction_route(
        prediction=prediction, challenger_prediction=_challenger_predict(item)
    )
    monitoring.drift_check_maybe_enqueue(prediction=prediction)
    logger.info("predict_item.done item=%s label=%s", item_id, prediction.label)
    return "predicted"


def _predict_with(*, item: Item, version) -> Prediction:
    """Predict one item with one model version and store it (once per pair)."""
    existing = item.predictions.filter(model_version=version).first()
    if existing is not None:
        return existing
    with item.image.open("rb") as handle:
        image = ml.load_image(handle)
    started = time.perf_counter()
    (result,) = ml.predict_images(
        artifact_path=version.artifact_path, sha256=version.sha256, images=[image]
    )
    latency_ms = (time.perf_counter() - started) * 1000
    prediction, _ = services.prediction_record(
        item=item, model_version=version, result=result, latency_ms=latency_ms
    )
    return prediction


def _challenger_predict(item: Item) -> Prediction | None:
    """The challenger predicts every item beside the champion (None without a challenger)."""
    from reviewapp import rollout

    challenger = rollout.challenger_of(item.project)
    if challenger is None:
        return None
    try:
        return _predict_with(item=item, version=challenger)
    except ml.ArtifactError:
        # A broken challenger must never stop the champion from acting.
        logger.exception("predict_item.challenger_failed item=%s v=%s", item.pk, challenger.number)
        return None


@shared_task(name="reviewapp.train_model", acks_late=True, reject_on_worker_lost=True)
def train_model(run_id: int) -> str:
    """Execute one queued training run (routed to the `training` queue); redelivery is a no-op."""
    from reviewapp import training

    version = training.training_run_execute(run_id=run_id)
    return f"v{version.number}" if version is not None else "not-registered"


@shared_task(name="reviewapp.reap_training_runs", acks_late=True)
def reap_training_runs(stale_seconds: float | None = None) -> int:
    """Fail training runs whose worker stopped sending heartbeats."""
    from datetime import timedelta

    from reviewapp import training

    stale = timedelta(seconds=stale_seconds) if stale_seconds else None
    return len(training.training_runs_reap(stale_after=stale))


@shared_task(name="reviewapp.retrain_project", acks_late=True)
def retrain_project(project_id: int, trigger: str = "schedule") -> int | None:
    """Scheduled or drift-triggered retraining of one project; refused while a run is active."""
    from reviewapp import retraining
    from reviewapp.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        logger.warning("retrain_project.missing project=%s", project_id)
        return None
    run = retraining.training_trigger(project=project, trigger=trigger, reason=trigger)
    return run.pk if run is not None else None


@shared_task(name="reviewapp.check_retrain_triggers", acks_late=True)
def check_retrain_triggers() -> list[int]:
    """Start runs in projects that collected enough new corrections."""
    from reviewapp import retraining

    return retraining.training_check_corrections()


@shared_task(name="reviewapp.rollout_check", acks_late=True)
def rollout_check(project_id: int | None = None) -> list[dict]:
    """Periodic rollout check (Celery beat): sequential demotion check, auto-promotion."""
    from reviewapp import rollout
    from reviewapp.models import Project

    projects = (
        Project.objects.all() if project_id is None else Project.objects.filter(pk=project_id)
    )
    return [rollout.project_check(project=project) for project in projects]


@shared_task(
    bind=True,
    name="reviewapp.deliver_webhook",
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


@shared_task(name="reviewapp.drift_check", acks_late=True)
def drift_check(project_id: int) -> list[int]:
    """Run the drift checks of one project; returns the ids of the alarms it opened."""
    from reviewapp.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        logger.warning("drift_check.missing project=%s", project_id)
        return []
    return [alarm.pk for alarm in monitoring.drift_check_run(project=project)]


@shared_task(name="reviewapp.drift_check_all", acks_late=True)
def drift_check_all() -> int:
    """Celery beat: enqueue a drift check for every project that has a champion."""
    from reviewapp.models import Alias, Project

    ids = list(
        Project.objects.filter(
            aliases__alias=Alias.CHAMPION, aliases__ended_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for project_id in ids:
        drift_check.delay(project_id)
    return len(ids)
