"""Pure statistics for the rollout engine: Wilson bounds, exact bounds, IPW, sequential checks.

Nothing here touches Django; every function is a plain function of numbers.

- Gates use the Wilson score interval (Wilson 1927, https://doi.org/10.2307/2276774; see Brown,
  Cai & DasGupta 2001, https://doi.org/10.1214/ss/1009213286, for why it beats the Wald interval).
- The demotion check is sequential: it looks after every reviewed auto-eligible item, so a fixed
  sample test would be wrong. We spend alpha over looks (look k gets alpha * 6 / (pi^2 k^2), which
  sums to alpha: a Bonferroni union bound over infinitely many looks) and use the exact
  Clopper-Pearson upper bound (https://doi.org/10.1093/biomet/26.4.404) for each look, because the
  first looks have n = 1, 2, 3 where Wilson's coverage is poor. So P(a correct model is ever
  demoted) <= alpha. Tighter anytime-valid bounds exist (Howard et al. 2021,
  https://arxiv.org/abs/1810.08240); this one is simple to audit and fast enough to catch a broken
  model within a handful of audits (see ``looks_to_detect``).
- Accuracy of auto-decisions is estimated with the Horvitz-Thompson inverse-propensity estimator
  (https://doi.org/10.1080/01621459.1952.10483446): each audited item weighs 1 / p.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist


def z_one_sided(confidence: float) -> float:
    """The normal quantile for a one-sided bound at this confidence level."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return NormalDist().inv_cdf(confidence)


def wilson_interval(successes: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval (low, high) for successes of n at normal quantile z."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_lower(successes: float, n: float, confidence: float) -> float:
    """One-sided Wilson lower bound at this confidence level (0 when n is 0)."""
    return wilson_interval(successes, n, z_one_sided(confidence))[0]


def wilson_upper(successes: float, n: float, confidence: float) -> float:
    """One-sided Wilson upper bound at this confidence level (1 when n is 0)."""
    return wilson_interval(successes, n, z_one_sided(confidence))[1]


def _binomial_cdf(x: int, n: int, p: float) -> float:
    """P(X <= x) for X ~ Binomial(n, p), summed in log space over the shorter tail."""
    if x < 0:
        return 0.0
    if x >= n or p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)

    def term(k: int) -> float:
        log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        return math.exp(log_choose + k * log_p + (n - k) * log_q)

    if x < n / 2:
        return min(1.0, sum(term(k) for k in range(x + 1)))
    return max(0.0, 1.0 - sum(term(k) for k in range(x + 1, n + 1)))


def clopper_pearson_upper(successes: int, n: int, alpha: float) -> float:
    """Exact one-sided upper bound: the p at which P(X <= successes) = alpha."""
    if n <= 0 or successes >= n:
        return 1.0
    low, high = successes / n, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if _binomial_cdf(successes, n, mid) > alpha:
            low = mid
        else:
            high = mid
    return high


def look_alpha(alpha: float, look: int) -> float:
    """Alpha spent at look k (1-based): alpha * 6 / (pi^2 k^2); the sum over all k is alpha."""
    return alpha * 6 / (math.pi**2 * look * look)


@dataclass(frozen=True)
class SequentialResult:
    """One look of the sequential demotion check."""

    look: int
    n: int
    agreed: int
    p_value: float
    alpha: float
    target: float

    @property
    def breached(self) -> bool:
        """Demote: even the exact upper bound on agreement is below target.

        Equivalent to P(X <= agreed | p = target) < alpha, which needs no root finding.
        """
        return self.n > 0 and self.p_value < self.alpha

    @property
    def upper(self) -> float:
        """The exact (Clopper-Pearson) upper bound on agreement at this look's alpha."""
        return clopper_pearson_upper(self.agreed, self.n, self.alpha)


def sequential_check(
    *, outcomes: list[bool], look: int, target: float, alpha: float, window: int
) -> SequentialResult:
    """Test the last ``window`` agreement outcomes at look ``look`` with alpha spending."""
    recent = outcomes[-window:] if window else outcomes
    agreed = sum(recent)
    return SequentialResult(
        look=look,
        n=len(recent),
        agreed=agreed,
        p_value=_binomial_cdf(agreed, len(recent), target),
        alpha=look_alpha(alpha, max(1, look)),
        target=target,
    )


def looks_to_detect(*, agreement: float, target: float, alpha: float, window: int) -> int | None:
    """Looks until a model with this steady agreement is demoted (None: within 10,000 never)."""
    outcomes: list[bool] = []
    for look in range(1, 10_001):
        # Deterministic stream with the given agreement rate: agree while below the rate.
        outcomes.append(sum(outcomes) + 1 <= agreement * look)
        if sequential_check(
            outcomes=outcomes, look=look, target=target, alpha=alpha, window=window
        ).breached:
            return look
    return None


def reviews_needed(*, n: int, agreed: int, target: float, confidence: float, minimum: int = 0):
    """More reviews needed for the Wilson lower bound to reach target at the current rate.

    Returns 0 when it already passes, None when the current agreement is at or below target (more
    of the same cannot pass). With no reviews yet, assumes perfect agreement (a lower bound).
    """
    rate = agreed / n if n else 1.0
    if n and rate <= target:
        return None

    def passes(extra: int) -> bool:
        total = n + extra
        return total >= minimum and wilson_lower(rate * total, total, confidence) >= target

    if passes(0):
        return 0
    high = 1
    while not passes(high):
        high *= 2
        if high > 10_000_000:
            return None
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if passes(mid) else (mid, high)
    return high


@dataclass(frozen=True)
class IpwEstimate:
    """Horvitz-Thompson accuracy estimate of auto-decisions and its standard error."""

    population: int
    audited: int
    estimate: float | None
    std_error: float | None


def ipw_accuracy(observations: Iterable[tuple[bool | None, float]]) -> IpwEstimate:
    """Estimate accuracy over a population of (agreed-or-None-if-unaudited, inclusion p) pairs."""
    population = 0
    audited = 0
    total = 0.0
    variance = 0.0
    for agreed, probability in observations:
        population += 1
        if agreed is None:
            continue
        if not 0 < probability <= 1:
            raise ValueError(f"an audited item needs a probability in (0, 1], not {probability}")
        audited += 1
        value = 1.0 if agreed else 0.0
        total += value / probability
        # Poisson-sampling variance estimate: sum (1 - p) y^2 / p^2 over the sample.
        variance += (1 - probability) * value / (probability * probability)
    if population == 0 or audited == 0:
        return IpwEstimate(population=population, audited=audited, estimate=None, std_error=None)
    return IpwEstimate(
        population=population,
        audited=audited,
        estimate=total / population,
        std_error=math.sqrt(variance) / population,
    )


def unit_hash(*parts: object) -> float:
    """A deterministic uniform number in [0, 1) for the parts joined by ':' (sticky per item)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
