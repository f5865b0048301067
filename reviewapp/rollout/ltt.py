"""Per-class confidence thresholds with a finite-sample error guarantee: Learn then Test.

Learn then Test (Angelopoulos, Bates, Candès, Jordan & Lei 2021, https://arxiv.org/abs/2110.01052)
turns threshold selection into multiple testing. For one predicted class c and a candidate
threshold λ, the null hypothesis is "the model's error among items it calls c with confidence
at least λ is ε or more". Its exact p-value is the binomial tail P(Binomial(n, ε) <= errors),
n being the blind labels of class-c predictions at or above λ (``scipy.stats.binom``; the LTT
paper's Section 3 calls this the exact binomial p-value). Rejecting it certifies the threshold.

- **Fixed-sequence testing** (LTT Section 4.1): candidates on a fixed grid are tested from the
  highest threshold down, each at the full level, stopping at the first one not rejected; the
  lowest rejected threshold is chosen. Risk grows as the threshold falls, so this order loses
  nothing and needs no correction over the grid.
- **Skipping untestable candidates**: a candidate with fewer labels than even an error-free
  sample would need to be rejected is skipped, not tested. Which ones are skipped depends on the
  confidences only, never on the labels, so a false rejection still needs the first true null
  that is *tested* to be rejected: the family-wise error stays at most the level.
- **δ split across classes** (Bonferroni): each class is tested at δ / (number of classes), so
  with probability at least 1 − δ *every* chosen threshold keeps its class's error at most ε,
  and so the error of all automatic decisions together is at most ε too.
- **Which labels**: only blind labels (the reviewer did not see the model's guess) of items the
  model saw as in domain. The calibration sample is the blind shadow reviews: every item of the
  class goes to a person, so every label has inclusion probability 1 and the plain binomial
  test is exact. Audits (inclusion probability < 1, only above the current threshold) are not
  mixed in — they would over-represent confident items below that threshold; they feed the
  anytime-valid monitor instead (``reviewapp.rollout.monitor``). Conservative: it discards
  information, never biases.

The guarantee assumes the labelled items and future items come from the same distribution
(exchangeability); the monitor is what catches a world that moves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

NEVER = 2.0  # a threshold no confidence reaches: the class stays with people

# Candidate thresholds, fixed before any data: log-spaced in (1 - λ) so the grid is finest near 1.
GRID: tuple[float, ...] = tuple(
    sorted({round(1 - float(step), 5) for step in np.geomspace(1e-4, 0.5, 60)}, reverse=True)
)


@dataclass(frozen=True)
class Labelled:
    """One blind label: the model's confidence on its predicted class and whether it was wrong."""

    confidence: float
    wrong: bool


@dataclass(frozen=True)
class ClassThreshold:
    """The outcome of Learn then Test for one class."""

    label: str
    threshold: float  # NEVER when no candidate was certified
    n: int  # blind labels at or above the threshold (all of them when NEVER)
    errors: int
    p_value: float | None
    level: float  # the δ share this class was tested at
    needed: int | None  # rough number of further blind labels to certify the loosest candidate

    @property
    def certified(self) -> bool:
        """A threshold was certified: the class may be decided by the model."""
        return self.threshold <= 1


def p_value(*, errors: int, n: int, epsilon: float) -> float:
    """Exact binomial p-value of H0: error >= ε, having seen ``errors`` wrong of ``n``."""
    if n <= 0:
        return 1.0
    return float(binom.cdf(errors, n, epsilon))


def min_labels(*, epsilon: float, level: float) -> int:
    """The fewest labels an error-free sample needs to reject H0 at this level."""
    return math.ceil(math.log(level) / math.log1p(-epsilon))


def labels_needed(*, errors: int, n: int, epsilon: float, level: float) -> int | None:
    """Further labels needed at the observed error rate to reject (None: that rate cannot)."""
    if p_value(errors=errors, n=n, epsilon=epsilon) <= level:
        return 0
    rate = errors / n if n else 0.0
    if rate >= epsilon:
        return None
    high = max(min_labels(epsilon=epsilon, level=level), 1)
    while p_value(errors=math.floor(rate * high), n=high, epsilon=epsilon) > level:
        high *= 2
        if high > 10_000_000:
            return None
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        ok = p_value(errors=math.floor(rate * mid), n=mid, epsilon=epsilon) <= level
        low, high = (low, mid) if ok else (mid, high)
    return max(0, high - n)


def class_threshold(
    *,
    label: str,
    labelled: Sequence[Labelled],
    epsilon: float,
    level: float,
    grid: Sequence[float] = GRID,
) -> ClassThreshold:
    """Learn then Test for one class at one level: the lowest certified threshold, or NEVER."""
    confidences = np.array([x.confidence for x in labelled], dtype=float)
    wrong = np.array([x.wrong for x in labelled], dtype=bool)
    floor = min_labels(epsilon=epsilon, level=level)
    best: tuple[float, int, int, float] | None = None
    for candidate in sorted(grid, reverse=True):
        above = confidences >= candidate
        n, errors = int(above.sum()), int(wrong[above].sum())
        if n < floor:
            continue  # no outcome could reject it: skipped (decided by confidences alone)
        p = p_value(errors=errors, n=n, epsilon=epsilon)
        if p > level:
            break
        best = (float(candidate), n, errors, p)
    if best is not None:
        threshold, n, errors, p = best
        return ClassThreshold(label, threshold, n, errors, p, level, needed=0)
    n, errors = len(labelled), int(wrong.sum())
    needed = labels_needed(errors=errors, n=n, epsilon=epsilon, level=level)
    p = p_value(errors=errors, n=n, epsilon=epsilon) if n else None
    return ClassThreshold(label, NEVER, n, errors, p, level, needed=needed)


def thresholds(
    *,
    labelled: Mapping[str, Iterable[Labelled]],
    labels: Sequence[str],
    epsilon: float,
    delta: float,
    grid: Sequence[float] = GRID,
) -> dict[str, ClassThreshold]:
    """Learn then Test for every class, δ split evenly (Bonferroni) over ``labels``."""
    if not 0 < epsilon < 1 or not 0 < delta < 1:
        raise ValueError(f"need 0 < ε, δ < 1, not ε={epsilon}, δ={delta}")
    level = delta / max(1, len(labels))
    return {
        label: class_threshold(
            label=label,
            labelled=list(labelled.get(label, ())),
            epsilon=epsilon,
            level=level,
            grid=grid,
        )
        for label in labels
    }
