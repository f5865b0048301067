"""How timings are summarised (each benchmark names which one it reports)."""

from __future__ import annotations

import statistics


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def percentile_interpolated(values: list[float], pct: int) -> float:
    """Percentile by linear interpolation between the closest ranks (0 for fewer than 2)."""
    if len(values) < 2:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)
