"""Blind human labels: the only sample that may calibrate thresholds and estimate accuracy.

A label is blind when the reviewer saw neither the model's suggestion nor a hint of it (a
"Priority alert" caption): shadow-stage reviews (every item reaches a person, inclusion
probability 1) and random audits of items the model would have decided alone (inclusion
probability = the task's audit probability). Items routed to people because they were uncertain,
out of domain, priority or disputed by a challenger are a selected sample and are left out: their
errors are not those of the items the model decides (issue 18, point 3). Estimates over these
rows weigh each by 1 / inclusion probability (Horvitz & Thompson 1952,
https://doi.org/10.1080/01621459.1952.10483446; ``stats.ipw_accuracy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from reviewapp.models import (
    DecidedBy,
    ModelVersion,
    Outcome,
    Prediction,
    Project,
    ReviewReason,
    Verdict,
)

# Task reasons whose first look is an unbiased sample of what the model would decide.
BLIND_SAMPLE_REASONS = (ReviewReason.SHADOW, ReviewReason.AUDIT)


@dataclass(frozen=True)
class BlindLabel:
    """One blind human label beside what the model said about the same item."""

    item_id: int
    model_version_id: int
    predicted: str
    confidence: float
    human: str  # "" when the reviewer marked the item out of domain
    inclusion_probability: float
    reason: str

    @property
    def correct(self) -> bool:
        """The model's label matched the reviewer's (an out-of-domain item is never correct)."""
        return bool(self.human) and self.human == self.predicted

    @property
    def weight(self) -> float:
        """Horvitz-Thompson weight: how many items of the population this label stands for."""
        return 1.0 / self.inclusion_probability


def _inclusion(reason: str, audit_probability: float | None) -> float | None:
    if reason == ReviewReason.SHADOW:
        return 1.0
    if audit_probability is None or not 0 < audit_probability <= 1:
        return None  # an audit without a usable probability cannot be weighted: left out
    return float(audit_probability)


def blind_labels(
    *, project: Project, model_version: ModelVersion | None = None, label: str | None = None
) -> list[BlindLabel]:
    """Every blind human label of the project, oldest first.

    ``model_version``: compare that version's own prediction on each item (a challenger is judged
    on the same blind items as the champion); by default, the prediction the task showed to no
    one. ``label``: only items that version predicted as this class.
    """
    outcomes = (
        Outcome.objects.filter(
            item__project=project,
            decided_by=DecidedBy.HUMAN,
            decision__undone_at__isnull=True,
            decision__suggestion_shown=False,
            decision__task__reason__in=BLIND_SAMPLE_REASONS,
            decision__task__prediction__isnull=False,
        )
        .exclude(decision__verdict=Verdict.SKIP)
        .order_by("created_at", "pk")
    )
    if model_version is None:
        version, predicted, confidence = (
            "decision__task__prediction__model_version_id",
            "decision__task__prediction__label",
            "decision__task__prediction__confidence",
        )
    else:
        own = Prediction.objects.filter(item_id=OuterRef("item_id"), model_version=model_version)
        outcomes = outcomes.annotate(
            own_label=Subquery(own.values("label")[:1]),
            own_confidence=Subquery(own.values("confidence")[:1]),
        ).filter(own_label__isnull=False)
        version, predicted, confidence = "decision__task__project_id", "own_label", "own_confidence"
    if label is not None:
        outcomes = outcomes.filter(**{predicted: label})
    rows = outcomes.values_list(
        "item_id",
        version,
        predicted,
        confidence,
        "label",
        "is_out_of_domain",
        "decision__task__reason",
        "decision__task__audit_probability",
    )
    out = []
    for item_id, version_id, said, conf, human, ood, reason, audit_probability in rows:
        probability = _inclusion(reason, audit_probability)
        if probability is None:
            continue
        out.append(
            BlindLabel(
                item_id=item_id,
                model_version_id=model_version.pk if model_version else version_id,
                predicted=str(said),
                confidence=float(conf),
                human="" if ood else str(human),
                inclusion_probability=probability,
                reason=reason,
            )
        )
    return out
