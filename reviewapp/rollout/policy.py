"""The rollout policy as plain data, and the pure decisions made from it: eligibility, gates.

The gate is per class (issue 18): a class may be decided by the model once Learn then Test
(``reviewapp.rollout.ltt``) certifies a confidence threshold for it under the project's error
budget; the project may leave a stage once at least one class is certified.

Nothing here touches the database: callers hand in a ``Policy`` (``Policy.from_project``) and the
evidence rows; ``reviewapp.rollout`` does the writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reviewapp.models import Stage
from reviewapp.rollout import ltt

STAGE_ORDER = [Stage.SHADOW, Stage.SUPERVISED, Stage.PARTIAL, Stage.AUTOMATED]
AUTOMATING_STAGES = {Stage.PARTIAL, Stage.AUTOMATED}


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
    epsilon: float = 0.01
    delta: float = 0.05
    class_audit_rates: Mapping[str, float] = field(default_factory=dict)
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
            epsilon=project.error_budget,
            delta=project.error_delta,
            class_audit_rates={
                str(k): float(v) for k, v in (project.class_audit_rates or {}).items()
            },
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

    def audit_rate_for(self, label: str) -> float:
        """The audit rate of automatic decisions of this class (adaptive, never below the floor)."""
        return max(self.audit_rate, self.class_audit_rates.get(label, 0.0))

    def threshold_for(self, label: str) -> float:
        """The confidence a prediction of this class needs to be decided by the model."""
        return self.class_thresholds.get(label, self.confidence_threshold)

    def candidate_labels(self) -> list[str]:
        """Classes that may earn automation: every label but the priority ones."""
        return [label for label in self.labels if label not in self.priority_labels]

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
    """One class of the gate: its blind labels and what Learn then Test made of them."""

    scope: str
    n: int
    errors: int
    threshold: float
    passed: bool
    missing: str
    target: float = 0.99  # 1 - ε: the agreement the class must be proven above

    @property
    def agreed(self) -> int:
        """Blind labels that agreed with the model."""
        return self.n - self.errors

    @property
    def agreement(self) -> float | None:
        """Observed agreement (None without labels)."""
        return self.agreed / self.n if self.n else None


@dataclass(frozen=True)
class GateReport:
    """Which classes have earned automation, and whether the project may leave its stage."""

    stage: str
    to_stage: str | None
    epsilon: float
    delta: float
    lines: list[GateLine]

    @property
    def passed(self) -> bool:
        """At least one class is certified (and there is a stage to go to)."""
        return self.to_stage is not None and any(line.passed for line in self.lines)

    @property
    def certified(self) -> dict[str, float]:
        """The certified classes and their thresholds."""
        return {line.scope: line.threshold for line in self.lines if line.passed}

    @property
    def missing(self) -> list[str]:
        """What is still missing, class by class."""
        return [line.missing for line in self.lines if not line.passed]

    def evidence(self) -> dict:
        """JSON evidence for the audit log."""
        return {
            "gate": {"stage": self.stage, "to": self.to_stage, "passed": self.passed},
            "error_budget": {"epsilon": self.epsilon, "delta": self.delta},
            "lines": [
                {
                    "scope": line.scope,
                    "n": line.n,
                    "errors": line.errors,
                    "threshold": line.threshold if line.passed else None,
                    "passed": line.passed,
                }
                for line in self.lines
            ],
        }


def missing_words(result: ltt.ClassThreshold, epsilon: float) -> str:
    """What a class still needs, in a user's words."""
    if result.certified:
        return ""
    if result.needed is None:
        return (
            f"class {result.label}: {result.errors} of {result.n} blind labels were wrong, more "
            f"than {epsilon:.1%}; more of the same cannot pass (retrain the model)"
        )
    return f"class {result.label}: needs ~{result.needed} more blind reviews"


def blind_samples(
    *, policy: Policy, reviews: Iterable[tuple[Scored, str]]
) -> dict[str, list[ltt.Labelled]]:
    """Blind (prediction, human label) pairs as LTT samples per predicted class.

    Only predictions the model could decide alone count (in domain, not a priority label):
    that is the population the thresholds automate. A human label that differs from the
    prediction (including "out of domain", an empty label) is an error.
    """
    per_class: dict[str, list[ltt.Labelled]] = defaultdict(list)
    for prediction, human_label in reviews:
        if prediction.label in policy.priority_labels or not policy.in_domain(prediction):
            continue
        per_class[prediction.label].append(
            ltt.Labelled(confidence=prediction.confidence, wrong=prediction.label != human_label)
        )
    return per_class


def class_thresholds_evaluate(
    *, policy: Policy, reviews: Iterable[tuple[Scored, str]]
) -> dict[str, ltt.ClassThreshold]:
    """Learn then Test on blind reviews, for every class the model may decide."""
    return ltt.thresholds(
        labelled=blind_samples(policy=policy, reviews=reviews),
        labels=policy.candidate_labels(),
        epsilon=policy.epsilon,
        delta=policy.delta,
    )


def gate_evaluate(*, policy: Policy, reviews: Iterable[tuple[Scored, str]]) -> GateReport:
    """The per-class gate out of the current stage, on blind (prediction, human label) pairs."""
    results = class_thresholds_evaluate(policy=policy, reviews=reviews)
    lines = [
        GateLine(
            scope=label,
            n=result.n,
            errors=result.errors,
            threshold=result.threshold,
            passed=result.certified,
            missing=missing_words(result, policy.epsilon),
            target=1 - policy.epsilon,
        )
        for label, result in results.items()
    ]
    return GateReport(
        stage=policy.stage,
        to_stage=next_stage(policy.stage),
        epsilon=policy.epsilon,
        delta=policy.delta,
        lines=lines,
    )
