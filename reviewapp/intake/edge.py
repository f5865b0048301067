"""Automatic decisions made on edge devices, recorded exactly like the server's own.

Why an endpoint of its own (``POST /api/v1/projects/<slug>/edge-decisions/``) and not a field on
the submit endpoint: submitting takes an image, and the point of deciding on the device is that
the image of an automatically decided item never leaves it. A report is a few numbers: the
item's key and content sha256, its size, the model version's sha256, label, confidence,
probabilities, OOD score and the image's statistics (brightness, contrast, colour, size: the
item-level domain guard checks them against the champion's profile, as for an uploaded image).

The server stays the authority. Each report is routed again by ``rollout.routing.route`` with the
project's policy as it stands *now* and the item's own sticky buckets; it is recorded only when
the reporting model is the champion and the server would have let it decide the item alone.
Then, in one transaction: an image-less Item (``image`` empty, never in the prediction outbox,
``source["edge"]`` set), the device's Prediction, and the Outcome through
``review.outcomes.outcome_create`` (decided by the model, with the audit probability the item
had). Automation rate, the inverse-propensity accuracy estimate and the audit sample then count
the device's decisions like the server's, because they are the same rows. Anything else answers
``review`` and stores nothing: the device must upload the image through the submit endpoint,
where the server predicts and routes it itself (a kill switch flipped after the export, a new
champion, a share lowered: people see the item at once).

Training snapshots use human outcomes only, so image-less items never reach a training run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from reviewapp import ml
from reviewapp.intake import domain, prediction_service
from reviewapp.intake.services import ALLOWED_FORMATS
from reviewapp.models import DecidedBy, Item, ItemOrigin, Project
from reviewapp.review import outcomes
from reviewapp.rollout import routing, versions
from reviewapp.rollout.guard import Looks
from reviewapp.rollout.policy import Policy, Scored

logger = logging.getLogger(__name__)

RECORDED = "recorded"
DUPLICATE = "duplicate"
REVIEW = "review"
CONFLICT = "conflict"
# What a device may report of an image (mlcore.reference.image_statistics' names).
IMAGE_STAT_NAMES = (
    "brightness",
    "contrast",
    "saturation",
    "colourfulness",
    "gray_share",
    "effective_resolution",
    "width",
    "height",
)


@dataclass(frozen=True)
class EdgeReport:
    """One automatic decision a device reports (its image stays on the device)."""

    key: str
    sha256: str
    width: int
    height: int
    image_format: str
    model_sha256: str
    label: str
    confidence: float
    ood_score: float
    is_ood: bool = False
    probabilities: dict[str, float] = field(default_factory=dict)
    image_stats: dict[str, float] | None = None  # the guard checks them when the device sends


@dataclass(frozen=True)
class EdgeResult:
    """What the server did with one report."""

    key: str
    status: str
    reason: str = ""
    item_id: int | None = None


def _existing(*, project: Project, report: EdgeReport) -> EdgeResult | None:
    same = Item.objects.filter(project=project, client_key=report.key).first()
    if same is not None and same.sha256 != report.sha256:
        return EdgeResult(report.key, CONFLICT, "the key was used for different content", same.pk)
    same = same or Item.objects.filter(project=project, sha256=report.sha256).first()
    if same is not None:
        return EdgeResult(report.key, DUPLICATE, "the server has this item already", same.pk)
    return None


def edge_route(*, project: Project, report: EdgeReport) -> tuple[routing.Route | None, str]:
    """The server's route for a reported decision (None with the reason when it cannot act)."""
    champion = versions.champion_of(project)
    if champion is None or champion.sha256 != report.model_sha256:
        return None, "stale_model: the reporting model is not the champion"
    if report.label not in project.labels:
        return None, f"unknown label {report.label!r}"
    scored = Scored(
        label=report.label,
        confidence=report.confidence,
        is_ood=report.is_ood,
        ood_score=report.ood_score,
    )
    profile = domain.domain_profile(champion) if report.image_stats else None
    decision = routing.route(
        prediction=scored,
        policy=Policy.from_project(project),
        buckets=routing.Buckets.of(project_id=project.pk, key=report.key),
        looks=Looks(image_stats=report.image_stats, profile=profile) if profile else None,
    )
    return decision, decision.reason


def _result(report: EdgeReport, *, top: int = 3) -> ml.PredictionResult:
    probabilities = {str(k): float(v) for k, v in report.probabilities.items()}
    ranked = sorted(probabilities.items(), key=lambda pair: -pair[1])[:top]
    return ml.PredictionResult(
        label=report.label,
        confidence=report.confidence,
        probabilities=probabilities or {report.label: report.confidence},
        top=ranked or [(report.label, report.confidence)],
        ood_score=report.ood_score,
        ood_scores={},
        is_ood=report.is_ood,
        image_stats=dict(report.image_stats) if report.image_stats else None,  # a drift sample
    )


def edge_decision_record(*, client_id: int, project: Project, report: EdgeReport) -> EdgeResult:
    """Record one device decision as the model's outcome, if the server's router agrees."""
    if (known := _existing(project=project, report=report)) is not None:
        return known
    decision, reason = edge_route(project=project, report=report)
    if decision is None or not decision.auto_accept:
        return EdgeResult(report.key, REVIEW, reason)
    champion = versions.champion_of(project)
    item = Item(
        project=project,
        sha256=report.sha256,
        image_format=ALLOWED_FORMATS.get(report.image_format.upper(), "png"),
        width=report.width,
        height=report.height,
        key=report.key,
        client_key=report.key,
        origin=ItemOrigin.API,
        source={"edge": {"model_sha256": report.model_sha256}, "api_client": client_id},
    )
    try:
        with transaction.atomic():
            item.save()
            prediction_service.prediction_record(
                item=item, model_version=champion, result=_result(report), latency_ms=0.0
            )
            outcomes.outcome_create(
                item_id=item.pk,
                label=report.label,
                decided_by=DecidedBy.MODEL,
                model_version_id=champion.pk,
                audit_probability=decision.audit_probability or 0.0,
            )
    except IntegrityError:  # a concurrent report of the same item won
        return _existing(project=project, report=report) or EdgeResult(report.key, DUPLICATE)
    logger.info("edge.recorded item=%s label=%s project=%s", item.pk, report.label, project.slug)
    return EdgeResult(report.key, RECORDED, "", item.pk)


def edge_decisions_record(
    *, client_id: int, project: Project, reports: list[EdgeReport]
) -> list[EdgeResult]:
    """Record a batch of device decisions, one result per report, in order."""
    return [
        edge_decision_record(client_id=client_id, project=project, report=report)
        for report in reports
    ]
