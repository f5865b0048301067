"""Reads for the rollout engine: gate evidence, audited accuracy, champion/challenger, history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from reviewapp.models import (
    Alias,
    AliasAssignment,
    DecidedBy,
    ModelVersion,
    Outcome,
    Prediction,
    Project,
    ReviewReason,
    RolloutEvent,
    RolloutEventKind,
)
from reviewapp.rollout import evidence, stats
from reviewapp.rollout import policy as rollout_policy
from reviewapp.rollout.policy import GateReport, Policy, Scored

COMPARISON_CONFIDENCE = 0.95  # two-sided intervals on the comparison page


def alias_holder(*, project: Project, alias: str) -> ModelVersion | None:
    """The version holding an alias now."""
    row = (
        AliasAssignment.objects.select_related("model_version")
        .filter(project=project, alias=alias, ended_at__isnull=True)
        .first()
    )
    return row.model_version if row else None


def alias_holder_at(*, project: Project, alias: str, when: datetime) -> AliasAssignment | None:
    """Which assignment held an alias at a past moment (None: nobody did)."""
    return (
        AliasAssignment.objects.select_related("model_version", "actor")
        .filter(project=project, alias=alias, started_at__lte=when)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=when))
        .order_by("-started_at")
        .first()
    )


def alias_history(*, project: Project) -> list[AliasAssignment]:
    """Every alias assignment of a project, newest first."""
    return list(
        AliasAssignment.objects.select_related("model_version", "actor")
        .filter(project=project)
        .order_by("-started_at", "-pk")
    )


def gate_report(*, project: Project) -> GateReport:
    """Which of the champion's classes have earned automation, on all its blind labels.

    Learn then Test on the blind shadow reviews (``reviewapp.rollout.evidence``); a class that
    was demoted counts as not passing until ``reviewapp.rollout.automation`` re-certifies it.
    """
    policy = Policy.from_project(project)
    champion = alias_holder(project=project, alias=Alias.CHAMPION)
    return rollout_policy.gate_evaluate(policy=policy, reviews=_blind(project, champion))


def _blind(project: Project, version: ModelVersion | None) -> list[tuple[Scored, str]]:
    if version is None:
        return []
    rows = evidence.blind_reviews(project=project, model_version=version)
    return [(scored, human) for scored, human, _ in rows]


def auto_accuracy_estimate(*, project: Project) -> stats.IpwEstimate:
    """Inverse-propensity estimate of the accuracy of auto-decisions in this stage.

    The population is every item the model decided or that was sampled for audit instead; each
    audited item weighs 1 / its audit probability.
    """
    rows = (
        Outcome.objects.filter(item__project=project, created_at__gte=project.stage_entered_at)
        .filter(Q(decided_by=DecidedBy.MODEL) | Q(decision__task__reason=ReviewReason.AUDIT))
        .values_list("decided_by", "label", "audit_probability", "decision__suggested_label")
    )
    observations = [
        (None, p) if by == DecidedBy.MODEL else (suggested == label, p)
        for by, label, p, suggested in rows
    ]
    return stats.ipw_accuracy(observations)


@dataclass(frozen=True)
class Accuracy:
    """Correct of n with a two-sided Wilson interval."""

    n: int
    correct: int
    low: float
    high: float

    @classmethod
    def of(cls, correct: int, n: int) -> Accuracy:
        """From counts."""
        z = stats.z_one_sided(1 - (1 - COMPARISON_CONFIDENCE) / 2)
        low, high = stats.wilson_interval(correct, n, z)
        return cls(n=n, correct=correct, low=low, high=high)

    @property
    def rate(self) -> float | None:
        """Observed accuracy."""
        return self.correct / self.n if self.n else None


@dataclass(frozen=True)
class Comparison:
    """Champion vs challenger on the same human-reviewed items."""

    champion: ModelVersion
    challenger: ModelVersion
    overall: tuple[Accuracy, Accuracy]
    per_class: list[tuple[str, Accuracy, Accuracy]]
    only_champion_right: int
    only_challenger_right: int
    disagreements: list[dict]
    gate: GateReport


def challenger_comparison(*, project: Project, limit: int = 50) -> Comparison | None:
    """Compare champion and challenger on every human-decided, in-domain item both predicted."""
    champion = alias_holder(project=project, alias=Alias.CHAMPION)
    challenger = alias_holder(project=project, alias=Alias.CHALLENGER)
    if champion is None or challenger is None:
        return None
    rows = Prediction.objects.filter(
        item__project=project,
        model_version__in=[champion, challenger],
        item__outcome__decided_by=DecidedBy.HUMAN,
        item__outcome__is_out_of_domain=False,
    ).values_list("item_id", "model_version_id", "label", "item__outcome__label")
    said: dict[int, dict[int, str]] = defaultdict(dict)
    truth: dict[int, str] = {}
    for item_id, version_id, label, human in rows:
        said[item_id][version_id] = label
        truth[item_id] = human
    both = sorted(i for i, by in said.items() if len(by) == 2)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    only_a = only_b = 0
    disagreements = []
    for item_id in both:
        a, b, human = said[item_id][champion.pk], said[item_id][challenger.pk], truth[item_id]
        for key in ("overall", human):
            counts[key][0] += 1
            counts[key][1] += int(a == human)
            counts[key][2] += int(b == human)
        only_a += int(a == human and b != human)
        only_b += int(b == human and a != human)
        if a != b and len(disagreements) < limit:
            disagreements.append(
                {"item_id": item_id, "champion": a, "challenger": b, "human": human}
            )
    n, ca, cb = counts.get("overall", [0, 0, 0])
    per_class = [
        (
            label,
            Accuracy.of(counts[label][1], counts[label][0]),
            Accuracy.of(counts[label][2], counts[label][0]),
        )
        for label in map(str, project.labels)
        if label in counts
    ]
    return Comparison(
        champion=champion,
        challenger=challenger,
        overall=(Accuracy.of(ca, n), Accuracy.of(cb, n)),
        per_class=per_class,
        only_champion_right=only_a,
        only_challenger_right=only_b,
        disagreements=disagreements,
        gate=challenger_gate(project=project, challenger=challenger),
    )


def challenger_gate(*, project: Project, challenger: ModelVersion) -> GateReport:
    """The promotion gate for a challenger: Learn then Test on its own predictions.

    Evidence is every blind-labelled item the challenger predicted (it shadows the champion, so
    these are the same items the champion is judged on). Its thresholds are derived from this
    evidence about it, never inherited from the champion.
    """
    policy = Policy.from_project(project)
    report = rollout_policy.gate_evaluate(policy=policy, reviews=_blind(project, challenger))
    return GateReport(
        stage="challenger",
        to_stage="champion",
        epsilon=report.epsilon,
        delta=report.delta,
        lines=report.lines,
    )


def rollout_timeline(*, project: Project, limit: int = 200) -> list[RolloutEvent]:
    """The audit log, newest first."""
    return list(
        RolloutEvent.objects.filter(project=project)
        .select_related("actor")
        .order_by("-created_at", "-pk")[:limit]
    )


def last_automatic_demotion(*, project: Project) -> RolloutEvent | None:
    """The automatic demotion that put the project in its current stage, if that is how."""
    event = (
        RolloutEvent.objects.filter(
            project=project, kind__in=[RolloutEventKind.STAGE, RolloutEventKind.KILL_SWITCH]
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if event is not None and event.evidence.get("automatic"):
        return event
    return None
