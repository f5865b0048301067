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
from datetime import datetime

from django.db.models import F

from reviewapp.models import (
    DecidedBy,
    ModelVersion,
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
    is_ood: bool = False  # what the model said of the item's domain
    ood_score: float = 0.0
    decided_at: datetime | None = None

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
    *,
    project: Project,
    model_version: ModelVersion | None = None,
    label: str | None = None,
    reasons: tuple[str, ...] = BLIND_SAMPLE_REASONS,
    since: datetime | None = None,
) -> list[BlindLabel]:
    """Every blind human label of the project, oldest first.

    ``model_version``: compare that version's own prediction on each item (a challenger is judged
    on the same blind items as the champion); by default, the prediction the task showed to no
    one. ``label``: only items that version predicted as this class. ``reasons``: the task
    reasons to read (the shadow reviews alone calibrate thresholds). ``since``: only labels given
    at or after it.
    """
    rows = Prediction.objects.filter(
        item__project=project,
        item__outcome__decided_by=DecidedBy.HUMAN,
        item__outcome__decision__undone_at__isnull=True,
        item__outcome__decision__suggestion_shown=False,
        item__outcome__decision__task__reason__in=reasons,
        item__outcome__decision__task__prediction__isnull=False,
    ).exclude(item__outcome__decision__verdict=Verdict.SKIP)
    if model_version is None:
        rows = rows.filter(pk=F("item__outcome__decision__task__prediction_id"))
    else:
        rows = rows.filter(model_version=model_version)
    if label is not None:
        rows = rows.filter(label=label)
    if since is not None:
        rows = rows.filter(item__outcome__created_at__gte=since)
    values = rows.order_by("item__outcome__created_at", "item__outcome__pk").values_list(
        "item_id",
        "model_version_id",
        "label",
        "confidence",
        "is_ood",
        "ood_score",
        "item__outcome__label",
        "item__outcome__is_out_of_domain",
        "item__outcome__decision__task__reason",
        "item__outcome__decision__task__audit_probability",
        "item__outcome__created_at",
    )
    out = []
    for item_id, version_id, said, conf, is_ood, ood_score, human, ood, reason, p, at in values:
        probability = _inclusion(reason, p)
        if probability is None:
            continue
        out.append(
            BlindLabel(
                item_id=item_id,
                model_version_id=version_id,
                predicted=str(said),
                confidence=float(conf),
                human="" if ood else str(human),
                inclusion_probability=probability,
                reason=reason,
                is_ood=bool(is_ood),
                ood_score=float(ood_score or 0.0),
                decided_at=at,
            )
        )
    return out
