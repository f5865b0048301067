"""The prediction service: predict an item with the champion (and challenger), store, route.

Called by the prediction task; redelivery is harmless (one prediction per item and model
version, one open task per item and reason, one outcome per item).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from reviewapp import jobs, ml
from reviewapp.intake import domain, outbox
from reviewapp.models import (
    DecidedBy,
    DriftSample,
    Item,
    ItemKind,
    ModelVersion,
    Prediction,
    ReviewTask,
    TaskStatus,
)
from reviewapp.review import alerts, gold, outcomes
from reviewapp.rollout import policy as rollout_policy
from reviewapp.rollout import routing, versions
from reviewapp.rollout import services as rollout

logger = logging.getLogger(__name__)


def item_predict(*, item_id: int) -> str:
    """Predict one item with its project's champion, store the prediction, route it.

    Returns what happened ("predicted", "already-predicted", "missing", "no-champion"). An
    item without a champion stays due: the outbox sweeper tries again after the requeue delay.
    """
    item = Item.objects.select_related("project").filter(pk=item_id).first()
    if item is None:
        logger.warning("predict_item.missing item=%s", item_id)
        return "missing"
    champion = versions.champion_of(item.project)
    if champion is None:
        logger.warning("predict_item.no_champion item=%s project=%s", item_id, item.project.slug)
        return "no-champion"
    existing = item.predictions.filter(model_version=champion).first()
    prediction = existing or _predict_with(item=item, version=champion)
    prediction_route(prediction=prediction, challenger_prediction=_challenger_predict(item))
    if existing is None:
        _drift_check_maybe_enqueue(prediction=prediction)
    outbox.prediction_settle(item_id=item_id)
    if existing is not None:
        return "already-predicted"
    logger.info("predict_item.done item=%s label=%s", item_id, prediction.label)
    return "predicted"


def _drift_check_maybe_enqueue(*, prediction: Prediction) -> bool:
    """After a new champion prediction: enqueue a drift check every HANDOFF_DRIFT_CHECK_EVERY."""
    every = settings.HANDOFF_DRIFT_CHECK_EVERY
    if every <= 0:
        return False
    count = Prediction.objects.filter(model_version_id=prediction.model_version_id).count()
    if count % every:
        return False
    jobs.job_send_on_commit(jobs.DRIFT_CHECK, prediction.model_version.project_id)
    return True


def _predict_with(*, item: Item, version: ModelVersion) -> Prediction:
    """Predict one item with one model version and store it (once per pair)."""
    existing = item.predictions.filter(model_version=version).first()
    if existing is not None:
        return existing
    names = item.frame_names or [item.image.name]  # a clip is predicted on its sampled frames
    images = []
    for name in names:
        with default_storage.open(name, "rb") as handle:
            images.append(ml.load_image(handle))
    started = time.perf_counter()
    results = ml.predict_images(
        artifact_path=version.artifact_path, sha256=version.sha256, images=images
    )
    latency_ms = (time.perf_counter() - started) * 1000
    frames: list[dict] = []
    if item.kind == ItemKind.CLIP:
        times = [frame["time"] for frame in item.clip["frames"]]
        frames = ml.clip_frame_summaries(results, times)
        results = [ml.clip_aggregate(results, priority_labels=item.project.priority_labels)]
    prediction, _ = prediction_record(
        item=item, model_version=version, result=results[0], latency_ms=latency_ms, frames=frames
    )
    return prediction


def _challenger_predict(item: Item) -> Prediction | None:
    """The challenger predicts every item beside the champion (None without a challenger)."""
    challenger = rollout.challenger_of(item.project)
    if challenger is None:
        return None
    try:
        return _predict_with(item=item, version=challenger)
    except ml.ArtifactError:
        # A broken challenger must never stop the champion from acting.
        logger.exception("predict_item.challenger_failed item=%s v=%s", item.pk, challenger.number)
        return None


def prediction_record(
    *,
    item: Item,
    model_version: ModelVersion,
    result: ml.PredictionResult,
    latency_ms: float,
    frames: list[dict] | None = None,
) -> tuple[Prediction, bool]:
    """Store a prediction once per (item, model version); a repeat returns the stored one.

    For a clip, ``result`` is the aggregated decision and ``frames`` the per-frame summaries.
    """
    try:
        with transaction.atomic():
            prediction = Prediction.objects.create(
                item=item,
                model_version=model_version,
                label=result.label,
                confidence=float(result.confidence),
                probabilities={k: float(v) for k, v in result.probabilities.items()},
                ood_score=float(result.ood_score),
                is_ood=bool(result.is_ood),
                latency_ms=latency_ms,
                frames=frames or [],
            )
            if result.embedding is not None or result.image_stats is not None:
                DriftSample.objects.create(
                    prediction=prediction,
                    embedding=list(result.embedding or []),
                    image_stats=dict(result.image_stats or {}),
                )
    except IntegrityError:
        return Prediction.objects.get(item=item, model_version=model_version), False
    return prediction, True


def prediction_route(
    *, prediction: Prediction, challenger_prediction: Prediction | None = None
) -> ReviewTask | None:
    """Route a champion prediction by the rollout policy: auto-accept it or open a review task.

    Returns the review task, or None when the model decided (or the item was already decided).
    """
    item = prediction.item
    project = item.project
    if hasattr(item, "outcome"):
        return None
    alerts.alert_raise_for(prediction=prediction)  # before the redelivery check: idempotent
    open_task = ReviewTask.objects.filter(
        item=item, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
    ).first()
    if open_task is not None:  # a redelivery: the item is already waiting for a human
        return open_task
    decision = routing.route(
        prediction=rollout_policy.Scored.of(prediction),
        policy=rollout_policy.Policy.from_project(project),
        buckets=routing.Buckets.of(project_id=project.pk, key=item.key),
        challenger=rollout_policy.Scored.of(challenger_prediction)
        if challenger_prediction
        else None,
        looks=domain.looks_of(prediction),
    )
    acting = challenger_prediction if decision.acting == routing.CHALLENGER else prediction
    if decision.auto_accept:
        _outcome_auto_accept(prediction=acting, audit_probability=decision.audit_probability)
        return None
    try:
        with transaction.atomic():
            task, created = ReviewTask.objects.get_or_create(
                item=item,
                reason=decision.reason,
                status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED],
                defaults={
                    "project": project,
                    "prediction": acting,
                    "priority": decision.priority,
                    "audit_probability": decision.audit_probability,
                    "detail": decision.detail[:200],
                    "status": TaskStatus.OPEN,
                },
            )
    except IntegrityError:
        return ReviewTask.objects.get(
            item=item, reason=decision.reason, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        )
    if created:
        gold.gold_task_mix_maybe(task=task)  # blind gold items at the project's rate
    return task


def _outcome_auto_accept(*, prediction: Prediction, audit_probability: float | None) -> None:
    """The model decides: store its label as the outcome, with the audit probability it had."""
    try:
        with transaction.atomic():
            outcomes.outcome_create(
                item_id=prediction.item_id,
                label=prediction.label,
                decided_by=DecidedBy.MODEL,
                model_version_id=prediction.model_version_id,
                audit_probability=audit_probability if audit_probability is not None else 0.0,
            )
    except IntegrityError:
        return  # decided already (a redelivery): the first outcome stands
    logger.info("prediction.auto_accepted item=%s label=%s", prediction.item_id, prediction.label)
