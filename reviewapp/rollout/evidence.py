"""Reads for earned automation: blind labels, audits of automatic decisions, per-class state."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from reviewapp.models import (
    AutomationState,
    ClassAutomation,
    DecidedBy,
    Decision,
    ModelVersion,
    Prediction,
    Project,
    ReviewReason,
    Verdict,
)
from reviewapp.rollout import blind
from reviewapp.rollout.policy import Scored


def blind_reviews(
    *, project: Project, model_version: ModelVersion, since: datetime | None = None
) -> list[tuple[Scored, str, datetime]]:
    """(prediction, human label, when) on items a person labelled blind in the shadow stage.

    Blind: the item's first-look decision was a shadow review whose suggestion was not shown
    (``blind.blind_labels``). Every item of the class went to a person then, so each label has
    inclusion probability 1.
    """
    rows = blind.blind_labels(
        project=project,
        model_version=model_version,
        reasons=(ReviewReason.SHADOW,),
        since=since,
    )
    return [
        (
            Scored(
                label=r.predicted, confidence=r.confidence, is_ood=r.is_ood, ood_score=r.ood_score
            ),
            r.human,
            r.decided_at,
        )
        for r in rows
    ]


def audit_records(
    *, project: Project, model_version: ModelVersion, since: datetime | None = None
) -> dict[str, list[tuple[datetime, int]]]:
    """Per predicted class, (when, 1 if the model was wrong else 0) for every audit since
    ``since``, in order.

    An audit is a person's verdict on an item the model would have decided alone; the item's
    final label is the truth (out of domain counts as wrong).
    """
    rows = Decision.objects.filter(
        task__project=project,
        task__reason=ReviewReason.AUDIT,
        task__prediction__model_version=model_version,
        undone_at__isnull=True,
    ).exclude(verdict=Verdict.SKIP)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    values = rows.order_by("created_at", "pk").values_list(
        "task__prediction__label", "item__outcome__label", "created_at"
    )
    per_class: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for predicted, truth, when in values:
        per_class[predicted].append((when, int(predicted != (truth or ""))))
    return per_class


def audit_outcomes(
    *, project: Project, model_version: ModelVersion, since: datetime | None = None
) -> dict[str, list[int]]:
    """``audit_records`` without the times: per predicted class, 1 (wrong) or 0 per audit."""
    records = audit_records(project=project, model_version=model_version, since=since)
    return {label: [wrong for _, wrong in pairs] for label, pairs in records.items()}


def class_automation(*, model_version: ModelVersion | None) -> dict[str, ClassAutomation]:
    """The per-class automation rows of one model version, by label."""
    if model_version is None:
        return {}
    return {row.label: row for row in ClassAutomation.objects.filter(model_version=model_version)}


@dataclass(frozen=True)
class ClassRow:
    """One line of the rollout page's per-class table."""

    label: str
    state: str
    state_label: str
    blind_n: int
    blind_errors: int
    threshold: float | None
    audits: int
    audit_errors: int
    error_lower: float
    audit_rate: float
    needs: str


def _needs(row: ClassAutomation, epsilon: float) -> str:
    if row.state == AutomationState.AUTOMATED:
        return "nothing: decided by the model above its threshold, audited"
    if row.needed is None:
        return f"its error is at or above {epsilon:.1%}: more of the same cannot pass (retrain it)"
    what = "fresh " if row.state == AutomationState.DEMOTED else ""
    return f"needs ~{row.needed} more {what}blind reviews"


def class_table(*, project: Project, model_version: ModelVersion | None) -> list[ClassRow]:
    """Every class of the project with its state and what it still needs, in a user's words."""
    rows = class_automation(model_version=model_version)
    table = []
    for label in map(str, project.labels):
        row = rows.get(label)
        if label in set(map(str, project.priority_labels or [])):
            needs, state, state_label = "a priority label: always a person first", "manual", ""
        elif row is None:
            needs, state, state_label = "waiting for the first evidence check", "manual", ""
        else:
            needs, state = _needs(row, project.error_budget), row.state
            state_label = row.get_state_display()
        table.append(
            ClassRow(
                label=label,
                state=state,
                state_label=state_label or AutomationState(state).label,
                blind_n=row.blind_n if row else 0,
                blind_errors=row.blind_errors if row else 0,
                threshold=row.threshold if row and row.threshold <= 1 else None,
                audits=row.audits if row else 0,
                audit_errors=row.audit_errors if row else 0,
                error_lower=row.error_lower if row else 0.0,
                audit_rate=row.audit_rate if row else 0.0,
                needs=needs,
            )
        )
    return table


def audit_cost(*, project: Project, model_version: ModelVersion | None) -> dict[str, int]:
    """Audits done (human decisions spent checking the model) and automatic decisions made."""
    if model_version is None:
        return {"audits": 0, "automatic": 0}
    audits = Decision.objects.filter(
        task__project=project,
        task__reason=ReviewReason.AUDIT,
        task__prediction__model_version=model_version,
        undone_at__isnull=True,
    ).count()
    automatic = Prediction.objects.filter(
        item__project=project,
        model_version=model_version,
        item__outcome__decided_by=DecidedBy.MODEL,
    ).count()
    return {"audits": audits, "automatic": automatic}
