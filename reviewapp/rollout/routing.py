"""The router: a pure function from (prediction, policy, item buckets) to where the item goes.

Buckets are hashes of (project, item key), so an item's place is sticky: with a traffic share of
s the items whose traffic bucket is below s are automated; raising 10% -> 25% keeps the first 10%,
lowering removes only the top buckets. Audit sampling and the challenger's A/B share use their
own, independent hashes of the same pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from reviewapp.models import REASON_PRIORITY, ReviewReason, Stage
from reviewapp.rollout import guard, stats
from reviewapp.rollout.blind import BLIND_SAMPLE_REASONS
from reviewapp.rollout.policy import Policy, Scored

AUTO_ACCEPT = "auto_accept"
REVIEW = "review"
ALERT = "alert"
CHAMPION = "champion"
CHALLENGER = "challenger"


def bucket_of(*, project_id: int, key: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by (project, item key, purpose)."""
    return stats.unit_hash(salt, project_id, key)


@dataclass(frozen=True)
class Buckets:
    """An item's three sticky draws: traffic share, audit sample, challenger A/B share."""

    traffic: float
    audit: float
    ab: float

    @classmethod
    def of(cls, *, project_id: int, key: str) -> Buckets:
        """The buckets of one item of one project."""
        return cls(
            traffic=bucket_of(project_id=project_id, key=key, salt="traffic"),
            audit=bucket_of(project_id=project_id, key=key, salt="audit"),
            ab=bucket_of(project_id=project_id, key=key, salt="ab"),
        )


@dataclass(frozen=True)
class Route:
    """Where an item goes.

    ``action`` is auto_accept (the acting model decides; ``audit_probability`` is the chance it
    would have been audited), review (a human decides, for ``reason``), or alert (a priority
    label: a human decides first, on the high-priority queue).
    """

    reason: str
    priority: int
    action: str = REVIEW
    acting: str = CHAMPION
    audit_probability: float | None = None
    detail: str = ""  # one line on why, where the reason alone does not say (the guard's)

    @property
    def auto_accept(self) -> bool:
        """True when the model decides without a human."""
        return self.action == AUTO_ACCEPT


def _review(
    reason: str, acting: str = CHAMPION, probability: float | None = None, detail: str = ""
) -> Route:
    action = ALERT if reason == ReviewReason.PRIORITY else REVIEW
    return Route(
        reason=reason,
        priority=REASON_PRIORITY[reason],
        action=action,
        acting=acting,
        audit_probability=probability,
        detail=detail,
    )


def route(
    *,
    prediction: Scored,
    policy: Policy,
    buckets: Buckets,
    challenger: Scored | None = None,
    looks: guard.Looks | None = None,
) -> Route:
    """Decide what happens to an item given the champion's (and challenger's) prediction.

    ``looks``: the item's image statistics and the champion's domain profile, for the guard.
    """
    said = {prediction.label} | ({challenger.label} if challenger else set())
    if said & policy.priority_labels or policy.priority_hit(prediction):
        return _review(ReviewReason.PRIORITY)
    if why := guard.out_of_domain_reason(prediction=prediction, policy=policy, looks=looks):
        return _review(ReviewReason.OUT_OF_DOMAIN, detail=why)  # in every stage (issue 18)
    if policy.kill_switch or policy.stage == Stage.SHADOW:
        return _review(ReviewReason.SHADOW)
    if policy.stage == Stage.SUPERVISED:
        if policy.threshold_for(prediction.label) > 1:
            # Stages are reached per class: one that has not earned a threshold is still in
            # shadow, reviewed blind, so its labels can certify it (issue 18).
            return _review(ReviewReason.SHADOW)
        return _review(ReviewReason.SUPERVISED)
    acting, scored = CHAMPION, prediction
    if challenger is not None and buckets.ab < policy.ab_share:
        acting, scored = CHALLENGER, challenger
    if not policy.in_domain(scored):
        return _review(ReviewReason.OUT_OF_DOMAIN, acting)
    threshold = policy.threshold_for(scored.label)
    if threshold > 1:
        # The class has not earned automation (or was demoted): it stays in shadow, with people.
        return _review(ReviewReason.SHADOW, acting)
    if scored.confidence < threshold:
        return _review(ReviewReason.LOW_CONFIDENCE, acting)
    if policy.stage == Stage.PARTIAL and buckets.traffic >= policy.traffic_share:
        return _review(ReviewReason.SUPERVISED, acting)
    if acting == CHAMPION and challenger is not None and challenger.label != prediction.label:
        # A shadowing challenger disagrees: the most informative item for the comparison.
        return _review(ReviewReason.DISAGREEMENT, acting)
    audit_rate = policy.audit_rate_for(scored.label)
    if buckets.audit < audit_rate:
        return _review(ReviewReason.AUDIT, acting, probability=audit_rate)
    return Route(
        reason="", priority=0, action=AUTO_ACCEPT, acting=acting, audit_probability=audit_rate
    )


# Tasks decided blind in every stage: random audits estimate the accuracy of the model's solo
# decisions, and shadow tasks (classes that have not earned automation, in any stage) are the
# sample that certifies a class; a reviewer who sees the guess is anchored to it (issue 18).
# The same reasons whose labels are the blind sample (``blind.BLIND_SAMPLE_REASONS``).
BLIND_REASONS = frozenset(BLIND_SAMPLE_REASONS)


def suggestion_visible(*, stage: str, kill_switch: bool, reason: str = "") -> bool:
    """Whether the reviewer may see the model's guess on a task: never in the shadow stage (or
    under the kill switch), never on an audit sample in any stage.

    A shadow task stays blind after a promotion: its class has not earned automation yet, and its
    label is what may certify it (rollout.evidence counts only decisions made without the guess).
    """
    return not (kill_switch or stage == Stage.SHADOW or reason in BLIND_REASONS)
