"""The frozen-holdout check: a challenger worse than the champion there is never promoted.

The candidate and the champion are scored on the same frozen holdout items (training.evaluation),
so the comparison is paired: only the items where exactly one of them is right tell them apart.
The challenger is refused when either

- it is worse by more than ``TOLERANCE`` (one percentage point of holdout accuracy), or
- the exact one-sided McNemar test says it is worse at level ``ALPHA``: among the discordant
  items, the champion-only-right count is a Binomial(b + c, 1/2) draw when the two are equally
  accurate (McNemar 1947, https://doi.org/10.1007/BF02295996; the exact form is a binomial test,
  ``scipy.stats.binomtest``).

The check is pure: it reads the ``holdout`` entry of a training run's evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scipy.stats import binomtest

TOLERANCE = 0.01  # a challenger may be at most this much less accurate on the holdout
ALPHA = 0.05  # one-sided level of the exact McNemar test that the challenger is worse


@dataclass(frozen=True)
class HoldoutVerdict:
    """Whether the frozen holdout allows promotion, and why, in one sentence."""

    allowed: bool
    message: str
    evidence: Mapping[str, Any]


def holdout_check(holdout: Mapping[str, Any] | None) -> HoldoutVerdict:
    """Judge a run's evaluation["sets"]["holdout"] entry (candidate vs champion, paired)."""
    holdout = holdout or {}
    n = int(holdout.get("n") or 0)
    candidate, champion = holdout.get("candidate"), holdout.get("champion")
    if n == 0 or not candidate or not champion:
        return HoldoutVerdict(True, "no frozen-holdout comparison with a champion to check", {})
    diff = (candidate["correct"] - champion["correct"]) / n
    paired = holdout.get("paired") or {}
    # Without per-item pairs (runs evaluated before the pairs were stored) the counts' difference
    # is the least the discordant items can be.
    only_candidate = int(paired.get("candidate_only", max(0, round(diff * n))))
    only_champion = int(paired.get("champion_only", max(0, -round(diff * n))))
    discordant = only_candidate + only_champion
    p_worse = (
        binomtest(only_champion, discordant, 0.5, alternative="greater").pvalue
        if discordant
        else 1.0
    )
    evidence = {
        "n": n,
        "candidate_correct": candidate["correct"],
        "champion_correct": champion["correct"],
        "candidate_only": only_candidate,
        "champion_only": only_champion,
        "mcnemar_p_worse": round(float(p_worse), 6),
        "tolerance": TOLERANCE,
    }
    said = (
        f"on the frozen holdout the challenger is right on {candidate['correct']}/{n} items, "
        f"the champion on {champion['correct']}/{n}"
    )
    if diff < -TOLERANCE:
        return HoldoutVerdict(
            False, f"{said}: worse by more than {TOLERANCE:.0%} of accuracy", evidence
        )
    if p_worse < ALPHA:
        return HoldoutVerdict(
            False, f"{said}: worse by an exact McNemar test (p = {p_worse:.3g})", evidence
        )
    return HoldoutVerdict(True, f"{said}: not worse", evidence)
