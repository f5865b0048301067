"""Pure statistics for the rollout pages: Wilson intervals, IPW estimates, sticky hashes.

Nothing here touches Django; every function is a plain function of numbers. The statistics that
decide anything live in their own modules: per-class thresholds in ``reviewapp.rollout.ltt``
(Learn then Test, exact binomial tests from scipy) and demotion in ``reviewapp.rollout.monitor``
(an anytime-valid betting confidence sequence).

- Intervals shown beside accuracies (champion vs challenger, dashboard) are Wilson score
  intervals (Wilson 1927, https://doi.org/10.2307/2276774; see Brown, Cai & DasGupta 2001,
  https://doi.org/10.1214/ss/1009213286, for why it beats the Wald interval).
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
