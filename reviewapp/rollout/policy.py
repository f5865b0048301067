"""The rollout policy as plain data, and the pure decisions made from it: eligibility, gates.

Nothing here touches the database: callers hand in a ``Policy`` (``Policy.from_project``) and the
evidence rows; ``reviewapp.rollout`` does the writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reviewapp.models import Stage
from reviewapp.rollout import stats

STAGE_ORDER = [Stage.SHADOW, Stage.SUPERVISED, Stage.PARTIAL, Stage.AUTOMATED]
AUTOMATING_STAGES = {Stage.PARTIAL, Stage.AUTOMATED}
DEMOTION_WINDOW = 200  # the sequential check looks at the latest reviews of this many items


def next_stage(stage: str) -> str | None:
    """The stage a promotion leads to (None from the last one)."""
    index = STAGE_ORDER.index(stage)
    return STAGE_ORDER[index + 1] if index + 1 < len(STAGE_ORDER) else None


def previous_stage(stage: str) -> str | None:
    """One step back for an automatic demotion: automated -> partial -> supervised, no further."""
    return {Stage.AUTOMATED: Stage.PARTIAL, Stage.PARTIAL: Stage.SUPERVISED}.get(stage)


def _audit_rate(project) -> float:
    """The project's audit rate, raised to its drift audit rate while a drift alarm is open."""
    if getattr(project, "drift_alarm_open", False):
        return max(project.audit_rate, project.drift_audit_rate)
    return project.audit_rate


@dataclass(frozen=True)
class Scored:
    """What the router needs of one prediction."""

    label: str
    confidence: float
    is_ood: bool = False
    ood_score: float = 0.0
    probabilities: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, prediction) -> Scored:
        """From a Prediction row (or anything with the same attributes)."""
        return cls(
            label=str(prediction.label),
            confidence=float(prediction.confidence),
            is_ood=bool(prediction.is_ood),
            ood_score=float(prediction.ood_score),
            probabilities={
                str(k): float(v)
                for k, v in (getattr(prediction, "probabilities", None) or {}).items()
            },
        )


@dataclass(frozen=True)
class PriorityHit:
    """Why a prediction raises an alert: the priority label, top1 or topk, its probability."""

    label: str
    reason: str
    probability: float


@dataclass(frozen=True)
class Policy:
    """A project's rollout policy at one moment."""

    stage: str
    labels: tuple[str, ...] = ()
    confidence_threshold: float = 0.95
    class_thresholds: Mapping[str, float] = field(default_factory=dict)
    ood_threshold: float | None = None
    traffic_share: float = 0.0
    audit_rate: float = 0.05
    priority_labels: frozenset[str] = frozenset()
    kill_switch: bool = False
    ab_share: float = 0.0
    gate_min_reviews: int = 200
    gate_target: float = 0.95
    gate_confidence: float = 0.95
    alert_top_k: int = 0
    alert_min_probability: float = 0.5

    @classmethod
    def from_project(cls, project) -> Policy:
        """Snapshot a Project's policy fields."""
        return cls(
            stage=project.stage,
            labels=tuple(str(label) for label in project.labels),
            confidence_threshold=project.confidence_threshold,
            class_thresholds={
                str(k): float(v) for k, v in (project.class_thresholds or {}).items()
            },
            ood_threshold=project.ood_threshold,
            traffic_share=project.traffic_share,
            audit_rate=_audit_rate(project),
            priority_labels=frozenset(str(label) for label in project.priority_labels or []),
            kill_switch=project.kill_switch,
            ab_share=project.ab_share,
            gate_min_reviews=project.gate_min_reviews,
            gate_target=project.gate_target_agreement,
            gate_confidence=project.gate_confidence,
            alert_top_k=int(getattr(project, "alert_top_k", 0) or 0),
            alert_min_probability=float(getattr(project, "alert_min_probability", 0.5)),
        )

    def priority_hit(self, prediction: Scored) -> PriorityHit | None:
        """A priority label predicted first (top1), or among the top k with p >= p (topk).

        The top-k rule catches what the model suspects but does not predict (issue 20: a stroke
        scan at 30% must still reach someone fast); k = 0 turns it off.
        """
        if prediction.label in self.priority_labels:
            probability = prediction.probabilities.get(prediction.label, prediction.confidence)
            return PriorityHit(prediction.label, "top1", float(probability))
        if self.alert_top_k < 1:
            return None
        ranked = sorted(prediction.probabilities.items(), key=lambda pair: -pair[1])
        for label, probability in ranked[: self.alert_top_k]:
            if label in self.priority_labels and probability >= self.alert_min_probability:
                return PriorityHit(label, "topk", float(probability))
        return None

    def threshold_for(self, label: str) -> float:
        """The confidence a prediction of this class needs to be decided by the model."""
        return self.class_thresholds.get(label, self.confidence_threshold)

    def auto_labels(self) -> list[str]:
        """Classes the model may decide: not priority labels, threshold not above 1."""
        return [
            label
            for label in self.labels
            if label not in self.priority_labels and self.threshold_for(label) <= 1
        ]

    def in_domain(self, prediction: Scored) -> bool:
        """In domain by the model's own flag and, when set, the project's OOD threshold."""
        if prediction.is_ood:
            return False
        return self.ood_threshold is None or prediction.ood_score <= self.ood_threshold

    def auto_eligible(self, prediction: Scored) -> bool:
        """Would the model decide this prediction alone (ignoring share and audit)?"""
        return (
            prediction.label not in self.priority_labels
            and self.in_domain(prediction)
            and prediction.confidence >= self.threshold_for(prediction.label)
        )


@dataclass(frozen=True)
class GateLine:
    """One row of a gate: overall or one class."""

    scope: str
    n: int
    agreed: int
    lower: float
    target: float
    minimum: int
    passed: bool
    missing: str

    @property
    def agreement(self) -> float | None:
        """Observed agreement (None without reviews)."""
        return self.agreed / self.n if self.n else None


@dataclass(frozen=True)
class GateReport:
    """Whether a project may leave its stage, and the numbers behind it."""

    stage: str
    to_stage: str | None
    confidence: float
    lines: list[GateLine]

    @property
    def passed(self) -> bool:
        """All lines pass (and there is a stage to go to)."""
        return self.to_stage is not None and all(line.passed for line in self.lines)

    @property
    def missing(self) -> list[str]:
        """What is still missing, line by line."""
        return [line.missing for line in self.lines if not line.passed]

    def evidence(self) -> dict:
        """JSON evidence for the audit log."""
        return {
            "gate": {"stage": self.stage, "to": self.to_stage, "passed": self.passed},
            "confidence": self.confidence,
            "lines": [
                {
                    "scope": line.scope,
                    "n": line.n,
                    "agreed": line.agreed,
                    "lower": round(line.lower, 4),
                    "target": line.target,
                    "passed": line.passed,
                }
                for line in self.lines
            ],
        }


def _gate_line(*, scope: str, n: int, agreed: int, minimum: int, policy: Policy) -> GateLine:
    target, confidence = policy.gate_target, policy.gate_confidence
    lower = stats.wilson_lower(agreed, n, confidence) if n else 0.0
    passed = n >= minimum and lower >= target
    missing = ""
    if not passed:
        more = stats.reviews_needed(
            n=n, agreed=agreed, target=target, confidence=confidence, minimum=minimum
        )
        what = "reviews" if scope == "overall" else f"reviews of class {scope}"
        if more is None:
            missing = (
                f"{scope}: agreement {agreed}/{n} is at or below the target {target:.0%}; "
                "more reviews of the same quality cannot pass (retrain or raise the threshold)"
            )
        else:
            missing = f"~{more} more {what}"
    return GateLine(
        scope=scope,
        n=n,
        agreed=agreed,
        lower=lower,
        target=target,
        minimum=minimum,
        passed=passed,
        missing=missing,
    )


def gate_evaluate(*, policy: Policy, reviews: Iterable[tuple[Scored, str]]) -> GateReport:
    """Evaluate the gate out of the current stage on human-reviewed (prediction, label) pairs.

    Only predictions the model would decide alone count (confident, in domain, not a priority
    label): that is the population the next stage automates. The overall line needs
    ``gate_min_reviews`` items; every class the model may decide needs its own Wilson lower bound
    at or above the target.
    """
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for prediction, human_label in reviews:
        if not policy.auto_eligible(prediction):
            continue
        counts = per_class[prediction.label]
        counts[0] += 1
        counts[1] += int(prediction.label == human_label)
    n = sum(c[0] for c in per_class.values())
    agreed = sum(c[1] for c in per_class.values())
    lines = [
        _gate_line(
            scope="overall", n=n, agreed=agreed, minimum=policy.gate_min_reviews, policy=policy
        )
    ]
    for label in policy.auto_labels():
        counts = per_class.get(label, [0, 0])
        lines.append(
            _gate_line(scope=label, n=counts[0], agreed=counts[1], minimum=1, policy=policy)
        )
    return GateReport(
        stage=policy.stage,
        to_stage=next_stage(policy.stage),
        confidence=policy.gate_confidence,
        lines=lines,
    )


def demotion_evaluate(
    *, policy: Policy, agreements: list[bool], window: int = DEMOTION_WINDOW
) -> stats.SequentialResult | None:
    """The sequential check on reviewed auto-eligible items, in order (None: nothing to check)."""
    if policy.stage not in AUTOMATING_STAGES or not agreements:
        return None
    return stats.sequential_check(
        outcomes=agreements,
        look=len(agreements),
        target=policy.gate_target,
        alpha=1 - policy.gate_confidence,
        window=window,
    )
