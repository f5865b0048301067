"""Storing and routing one prediction: the per-item primitives under the batched worker.

reviewapp/intake/batching.py predicts items in batches and writes them in bulk; when a bulk write
meets a row that a concurrent worker wrote first, it falls back to these, which settle each row
by its constraint. Redelivery is harmless (one prediction per item and model version, one open
task per item and reason, one outcome per item).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from reviewapp import ml
from reviewapp.intake import domain
from reviewapp.models import (
    DecidedBy,
    DriftSample,
    Item,
    ModelVersion,
    Outcome,
    Prediction,
    ReviewTask,
    TaskStatus,
)
from reviewapp.review import alerts, gold, ordering, outcomes
from reviewapp.rollout import policy as rollout_policy
from reviewapp.rollout import routing

logger = logging.getLogger(__name__)


def prediction_build(
    *,
    item: Item,
    model_version: ModelVersion,
    result: ml.PredictionResult,
    latency_ms: float,
    frames: list[dict] | None = None,
) -> Prediction:
    """An unsaved Prediction row for one result; ``result`` stays on it for its drift sample."""
    prediction = Prediction(
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
    prediction.result = result
    return prediction


def drift_sample_build(prediction: Prediction) -> DriftSample | None:
    """The unsaved drift sample of a built prediction (None when its result has neither part)."""
    result = prediction.result
    if result.embedding is None and result.image_stats is None:
        return None
    return DriftSample(
        prediction=prediction,
        embedding=list(result.embedding or []),
        image_stats=dict(result.image_stats or {}),
    )


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
    prediction = prediction_build(
        item=item, model_version=model_version, result=result, latency_ms=latency_ms, frames=frames
    )
    try:
        with transaction.atomic():
            prediction.save(force_insert=True)
            sample = drift_sample_build(prediction)
            if sample is not None:
                sample.save(force_insert=True)
    except IntegrityError:
        return Prediction.objects.get(item=item, model_version=model_version), False
    return prediction, True


def route_decide(
    *,
    prediction: Prediction,
    challenger_prediction: Prediction | None,
    policy: rollout_policy.Policy,
) -> tuple[routing.Route, Prediction]:
    """The rollout policy's route for a champion prediction, and the prediction that acts."""
    item = prediction.item
    decision = routing.route(
        prediction=rollout_policy.Scored.of(prediction),
        policy=policy,
        buckets=routing.Buckets.of(project_id=item.project_id, key=item.key),
        challenger=rollout_policy.Scored.of(challenger_prediction)
        if challenger_prediction
        else None,
        looks=domain.looks_of(prediction),
    )
    acting = challenger_prediction if decision.acting == routing.CHALLENGER else prediction
    return decision, acting


def review_task_build(*, item: Item, decision: routing.Route, acting: Prediction) -> ReviewTask:
    """The open review task a route asks for (not saved); ordering.tasks_score scores a batch
    of them."""
    return ReviewTask(
        item=item,
        project=item.project,
        reason=decision.reason,
        prediction=acting,
        priority=decision.priority,
        audit_probability=decision.audit_probability,
        detail=decision.detail[:200],
        status=TaskStatus.OPEN,
    )


def prediction_route(
    *, prediction: Prediction, challenger_prediction: Prediction | None = None
) -> ReviewTask | None:
    """Route a champion prediction by the rollout policy: auto-accept it or open a review task.

    Returns the review task, or None when the model decided (or the item was already decided).
    """
    item = prediction.item
    if Outcome.objects.filter(item_id=item.pk).exists():
        return None
    alerts.alert_raise_for(prediction=prediction)  # before the redelivery check: idempotent
    open_task = ReviewTask.objects.filter(
        item=item, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
    ).first()
    if open_task is not None:  # a redelivery: the item is already waiting for a human
        return open_task
    decision, acting = route_decide(
        prediction=prediction,
        challenger_prediction=challenger_prediction,
        policy=rollout_policy.Policy.from_project(item.project),
    )
    if decision.auto_accept:
        outcome_auto_accept(prediction=acting, audit_probability=decision.audit_probability)
        return None
    built = review_task_build(item=item, decision=decision, acting=acting)
    ordering.tasks_score([built])
    try:
        with transaction.atomic():
            task, created = ReviewTask.objects.get_or_create(
                item=item,
                reason=decision.reason,
                status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED],
                defaults={
                    "project_id": item.project_id,
                    "prediction": acting,
                    "priority": built.priority,
                    "audit_probability": built.audit_probability,
                    "informativeness": built.informativeness,
                    "detail": built.detail,
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


def outcome_auto_accept(*, prediction: Prediction, audit_probability: float | None) -> None:
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


def outcomes_auto_accept(
    decisions: list[tuple[Prediction, float | None]], *, savepoint: bool = True
) -> list[Outcome]:
    """``outcome_auto_accept`` for a batch of (acting prediction, audit probability): one INSERT.

    An item decided meanwhile (a concurrent worker's outcome) breaks the bulk insert: the batch
    is then settled one by one, the first outcome of each item standing (without a
    ``savepoint`` the error is raised instead). Returns the outcomes the one INSERT stored (none
    when the batch was settled one by one).
    """
    rows = [
        Outcome(
            item_id=prediction.item_id,
            label=prediction.label,
            decided_by=DecidedBy.MODEL,
            model_version_id=prediction.model_version_id,
            audit_probability=audit_probability if audit_probability is not None else 0.0,
        )
        for prediction, audit_probability in decisions
    ]
    if not rows:
        return []
    try:
        with transaction.atomic(savepoint=savepoint):
            outcomes.outcomes_create_bulk(rows)
    except IntegrityError:
        if not savepoint:
            raise
        for prediction, audit_probability in decisions:
            outcome_auto_accept(prediction=prediction, audit_probability=audit_probability)
        return []
    logger.info("prediction.auto_accepted items=%s", len(rows))
    return rows
