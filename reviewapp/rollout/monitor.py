"""Anytime-valid monitoring of automatic decisions: a betting test and confidence sequence.

Each audit of an automatic decision is a 0/1 outcome (1: the model was wrong). We test
H0: "the error is at most ε" after *every* audit, for as long as the class stays automated, by
betting against it (Waudby-Smith & Ramdas 2023, "Estimating means of bounded random variables
by betting", JRSS-B, https://doi.org/10.1093/jrsssb/qkad009, https://arxiv.org/abs/2010.09686):

    K_t(m) = prod_{i <= t} (1 + λ_i (x_i − m)),  λ_i >= 0 chosen from x_1 .. x_{i−1} only.

Under H0 (every audit's conditional error at most m) K_t(m) is a nonnegative supermartingale, so
by Ville's inequality P(K_t(m) ever reaches 1/α) <= α. Demoting the class the first time
K_t(ε) >= 1/α therefore demotes a class whose error is at most ε with probability at most α,
however long it runs and however often we look — no window, no alpha spending. The set
{m : K_t(m) < 1/α} is a one-sided (1 − α) confidence sequence; its lower end is the "lower bound
on the error" shown on the rollout page, and "lower bound > ε" is exactly K_t(ε) >= 1/α.

The bet λ_i is the paper's approximate GRAPA (growth-rate adaptive) plug-in, Section 5.2:
λ_i = (μ̂ − m) / (σ̂² + (μ̂ − m)²), clipped to [0, c/m] with c = 1/2 so the wealth stays positive,
using regularised running estimates μ̂ = (1/2 + Σx)/(i + 1) (Bernoulli: σ̂² = μ̂(1 − μ̂)).
Everything is cumulative sums, so many simulated streams are computed at once (numpy).

The audit rate adapts to how much evidence there is (``audit_rate``): high right after a class
is automated, lower as clean audits accumulate, never below the project's floor, raised by alarms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BET_CAP = 0.5  # c in λ <= c/m: a single audit never risks more than half the wealth
BOUND_GRID = np.linspace(0.0, 1.0, 1001)[1:]  # where the lower confidence bound is searched


def log_wealth(outcomes: np.ndarray, null: float | np.ndarray) -> np.ndarray:
    """log K_t(null) after each outcome, along the last axis (leading axes: streams or nulls)."""
    x = np.asarray(outcomes, dtype=float)
    t = np.arange(x.shape[-1])
    before = np.cumsum(x, axis=-1) - x  # Σ x_1 .. x_{t−1}, known before the t-th outcome
    mean = (0.5 + before) / (t + 1)
    variance = mean * (1 - mean)
    gap = mean - null
    bet = np.clip(gap / (variance + gap * gap), 0.0, BET_CAP / null)
    return np.cumsum(np.log1p(bet * (x - null)), axis=-1)


def first_crossing(outcomes: np.ndarray, *, null: float, alpha: float) -> np.ndarray:
    """1-based index of the first outcome at which K(null) >= 1/α, 0 where it never does."""
    crossed = log_wealth(outcomes, null) >= math.log(1 / alpha)
    hit = crossed.any(axis=-1)
    return np.where(hit, crossed.argmax(axis=-1) + 1, 0)


def lower_bound(outcomes: Sequence[int], *, alpha: float) -> float:
    """The lower end of the (1 − α) confidence sequence on the error after these outcomes.

    Running intersection: the largest m rejected at any time so far (0 when none is).
    """
    x = np.asarray(outcomes, dtype=float)
    if x.size == 0:
        return 0.0
    nulls = BOUND_GRID[:, None]
    rejected = BOUND_GRID[log_wealth(x[None, :], nulls).max(axis=-1) >= math.log(1 / alpha)]
    return float(rejected.max()) if rejected.size else 0.0


@dataclass(frozen=True)
class MonitorResult:
    """The monitor of one class (or of all automatic decisions) after its audits so far."""

    scope: str
    audits: int
    errors: int
    lower: float  # lower end of the confidence sequence on the error
    epsilon: float
    alpha: float
    breached: bool  # the error is above ε with confidence 1 − α: demote
    at_audit: int | None  # the audit at which it first crossed

    @property
    def observed(self) -> float | None:
        """The raw audited error (None without audits)."""
        return self.errors / self.audits if self.audits else None


def evaluate(*, scope: str, outcomes: Sequence[int], epsilon: float, alpha: float) -> MonitorResult:
    """Run the betting test of error <= ε over these audits, in order (1 = the model was wrong)."""
    x = np.asarray(list(outcomes), dtype=float)
    crossing = int(first_crossing(x, null=epsilon, alpha=alpha)) if x.size else 0
    return MonitorResult(
        scope=scope,
        audits=int(x.size),
        errors=int(x.sum()),
        lower=lower_bound(x, alpha=alpha),
        epsilon=epsilon,
        alpha=alpha,
        breached=crossing > 0,
        at_audit=crossing or None,
    )


def evidence_audits(epsilon: float) -> int:
    """Audits after which the evidence is no longer thin: ~the audits to catch an error of 3ε.

    With error 3ε the betting wealth grows by about KL(3ε || ε) per audit, so 1/ε audits give it
    ~e^(3.3) at small ε: the size of sample the monitor needs to act.
    """
    return max(20, math.ceil(3 / epsilon))


def audit_rate(
    *, audits: int, epsilon: float, floor: float, ceiling: float = 0.5, alarm_rate: float = 0.0
) -> float:
    """The audit rate of a freshly or long automated class.

    ``ceiling`` right after automation, decaying as n0 / (n0 + audits) with n0 the audits at which
    the evidence stops being thin (``evidence_audits``), never below ``floor`` (the project's audit
    rate), and at least ``alarm_rate`` while a drift alarm is open.
    """
    n0 = evidence_audits(epsilon)
    rate = ceiling * n0 / (n0 + max(0, audits))
    return min(1.0, max(rate, floor, alarm_rate))
