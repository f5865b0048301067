"""The router: a pure function from (prediction, policy) to where the item goes.

This is the foundation's router: every item reaches a human, as in the shadow stage; priority
labels always go first. The rollout engine extends it with auto-accept, traffic shares and
audit sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

from reviewapp.models import REASON_PRIORITY, ReviewReason, Stage


@dataclass(frozen=True)
class Route:
    """Where an item goes: review with a reason and priority (auto-accept comes later)."""

    reason: str
    priority: int
    auto_accept: bool = False


def route(*, stage: str, label: str, priority_labels: list[str], kill_switch: bool) -> Route:
    """Decide the review reason for a champion prediction under the project's policy."""
    if label in priority_labels:
        reason = ReviewReason.PRIORITY
    elif kill_switch or stage == Stage.SHADOW:
        reason = ReviewReason.SHADOW
    else:
        reason = ReviewReason.SUPERVISED
    return Route(reason=reason, priority=REASON_PRIORITY[reason])


def suggestion_visible(*, stage: str, kill_switch: bool) -> bool:
    """In the shadow stage reviewers decide blind: the model's guess is hidden (no anchoring)."""
    return not (kill_switch or stage == Stage.SHADOW)
