"""Earned automation, class by class: the one writer of ClassAutomation rows (issue 18).

For the champion, every class moves through manual -> automated -> demoted on its own evidence:

- **Graduation**: Learn then Test (``reviewapp.rollout.ltt``) on the blind shadow labels
  certifies a threshold under the project's error budget (ε, δ); the class is automated above it.
  A demoted class graduates again only on blind labels given after its demotion.
- **Demotion**: the anytime-valid betting test (``reviewapp.rollout.monitor``) on the audits of the
  class since it was automated; the class is demoted the moment the lower bound of its error
  exceeds ε. The same test over all the champion's audits in this stage reports an overall breach
  (the caller demotes the project stage).
- **Audit rate**: per class, high right after automation, lower as audits accumulate, never below
  the project's audit rate, raised to the drift audit rate while a drift alarm is open.

The derived thresholds and audit rates are cached on the project (``class_thresholds``,
``class_audit_rates``), which is what the router, the edge bundle and the exports read. Rows are
keyed by model version: a new champion starts with none and earns its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from reviewapp.models import (
    Alias,
    AutomationState,
    ClassAutomation,
    ModelVersion,
    Project,
    RolloutEvent,
    RolloutEventKind,
)
from reviewapp.rollout import evidence, ltt, monitor
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout.policy import Policy, blind_samples

logger = logging.getLogger(__name__)

RECOMPUTE_EVERY = 20  # after human decisions, the thresholds are recomputed about once in this many


@dataclass
class Recomputed:
    """What one recompute changed."""

    graduated: list[str] = field(default_factory=list)
    demoted: list[str] = field(default_factory=list)
    overall: monitor.MonitorResult | None = None

    def as_dict(self) -> dict:
        """JSON for the periodic task's result."""
        overall = self.overall
        return {
            "graduated": self.graduated,
            "demoted": self.demoted,
            "overall_breached": bool(overall and overall.breached),
        }


def _log(*, project: Project, row: ClassAutomation, before: str, reason: str, extra: dict) -> None:
    RolloutEvent.objects.create(
        project=project,
        kind=RolloutEventKind.THRESHOLD,
        actor=None,
        actor_label="system",
        from_value=f"class {row.label}: {before}"[:200],
        to_value=f"class {row.label}: {row.state}"[:200],
        reason=reason,
        evidence={
            "automatic": True,
            "class": row.label,
            "model_version": row.model_version.number,
            "blind": {"n": row.blind_n, "errors": row.blind_errors},
            "audits": {"n": row.audits, "errors": row.audit_errors, "lower": row.error_lower},
            "threshold": row.threshold if row.threshold <= 1 else None,
            "error_budget": {"epsilon": project.error_budget, "delta": project.error_delta},
            **extra,
        },
    )


def _graduate(row: ClassAutomation, result: ltt.ClassThreshold, now) -> bool:
    """Update a manual or demoted class from Learn then Test; True when it graduates."""
    row.blind_n, row.blind_errors, row.needed = result.n, result.errors, result.needed
    if not result.certified:
        return False
    row.state, row.threshold, row.since = AutomationState.AUTOMATED, result.threshold, now
    row.audits = row.audit_errors = 0
    row.error_lower = 0.0
    return True


def _watch(row: ClassAutomation, outcomes: list[int], project: Project) -> bool:
    """Update an automated class from its audits; True when the monitor demotes it."""
    result = monitor.evaluate(
        scope=row.label, outcomes=outcomes, epsilon=project.error_budget, alpha=project.error_delta
    )
    row.audits, row.audit_errors, row.error_lower = result.audits, result.errors, result.lower
    return result.breached


def _audit_rate(row: ClassAutomation, project: Project) -> float:
    if row.state != AutomationState.AUTOMATED:
        return 0.0
    alarm = project.drift_audit_rate if project.drift_alarm_open else 0.0
    return monitor.audit_rate(
        audits=row.audits,
        epsilon=project.error_budget,
        floor=project.audit_rate,
        alarm_rate=alarm,
    )


def _class_rows(project: Project, version: ModelVersion, labels: list[str]) -> dict:
    rows = evidence.class_automation(model_version=version)
    for label in labels:
        if label not in rows:
            rows[label] = ClassAutomation(project=project, model_version=version, label=label)
    return rows


def classes_recompute(*, project: Project) -> Recomputed:
    """Graduate, watch and demote the champion's classes; cache thresholds on the project."""
    project.refresh_from_db()
    champion = rollout_selectors.alias_holder(project=project, alias=Alias.CHAMPION)
    done = Recomputed()
    if champion is None:
        return done
    policy = Policy.from_project(project)
    labels = policy.candidate_labels()
    level = project.error_delta / max(1, len(labels))
    reviews = evidence.blind_reviews(project=project, model_version=champion)
    now = timezone.now()
    with transaction.atomic():
        rows = _class_rows(project, champion, labels)
        # One read of the audits for every class's bound and the overall one (filtered below).
        starts = [r.since for r in rows.values() if r.state == AutomationState.AUTOMATED]
        audits = evidence.audit_records(
            project=project,
            model_version=champion,
            since=min([*starts, project.stage_entered_at]),
        )
        for label, row in rows.items():
            before = row.state
            if row.state == AutomationState.AUTOMATED:
                since = [wrong for at, wrong in audits.get(label, []) if at >= row.since]
                if _watch(row, since, project):
                    row.state, row.threshold, row.since = AutomationState.DEMOTED, ltt.NEVER, now
                    done.demoted.append(label)
                    _log(project=project, row=row, before=before, reason=_demoted(row), extra={})
            else:
                fresh = [
                    (scored, human)
                    for scored, human, when in reviews
                    if scored.label == label
                    and (row.state != AutomationState.DEMOTED or when >= row.since)
                ]
                result = ltt.class_threshold(
                    label=label,
                    labelled=blind_samples(policy=policy, reviews=fresh).get(label, []),
                    epsilon=project.error_budget,
                    level=level,
                )
                if _graduate(row, result, now):
                    done.graduated.append(label)
                    _log(project=project, row=row, before=before, reason=_graduated(row), extra={})
            row.audit_rate, row.updated_at = _audit_rate(row, project), now
            row.save()
        thresholds = {label: rows[label].threshold for label in labels}
        rates = {k: r.audit_rate for k, r in rows.items() if r.state == AutomationState.AUTOMATED}
        Project.objects.filter(pk=project.pk).update(
            class_thresholds=thresholds, class_audit_rates=rates
        )
    # Over the audits of this stage only: a breach that already stepped the stage back is not
    # counted again in the next one.
    automated_audits = [
        wrong
        for label in rates
        for at, wrong in audits.get(label, [])
        if at >= max(rows[label].since, project.stage_entered_at)
    ]
    done.overall = monitor.evaluate(
        scope="overall",
        outcomes=automated_audits,
        epsilon=project.error_budget,
        alpha=project.error_delta,
    )
    if done.graduated or done.demoted:
        logger.info(
            "rollout.classes project=%s graduated=%s demoted=%s",
            project.slug,
            done.graduated,
            done.demoted,
        )
    project.refresh_from_db()
    return done


def _graduated(row: ClassAutomation) -> str:
    return (
        f"Class {row.label} earned automation: {row.blind_n} blind labels at confidence "
        f"{row.threshold:.4g} or more, {row.blind_errors} wrong (Learn then Test)."
    )


def _demoted(row: ClassAutomation) -> str:
    return (
        f"Class {row.label} demoted: {row.audit_errors} of {row.audits} audits wrong; the lower "
        f"bound of its error, {row.error_lower:.2%}, is above the error budget."
    )
