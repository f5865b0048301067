"""Alert latency for the dashboard: arrival -> push and arrival -> human decision.

Arrival is when the item was stored (``Item.created_at``), push when the on-call list was told
(``Alert.pushed_at``), decision when a reviewer's decision settled it (``Alert.decided_at``).
Median and 90th percentile use numpy's default (linear interpolation between order statistics,
Hyndman & Fan type 7), over the project's last N alerts; alerts not yet pushed or decided are
counted as pending, not as zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reviewapp.models import Alert, Project

LAST_N = 100


@dataclass(frozen=True)
class Latency:
    """Seconds from arrival to one milestone over the alerts that reached it."""

    n: int
    pending: int
    median: float | None
    p90: float | None


def latency_of(seconds: list[float], *, pending: int = 0) -> Latency:
    """Median and p90 of latencies in seconds (None when there are none)."""
    if not seconds:
        return Latency(n=0, pending=pending, median=None, p90=None)
    median, p90 = np.percentile(np.asarray(seconds, dtype=float), [50, 90])
    return Latency(n=len(seconds), pending=pending, median=float(median), p90=float(p90))


def alert_latency(*, project: Project, last_n: int = LAST_N) -> dict[str, Latency | int]:
    """Arrival -> push and arrival -> decision over the project's last ``last_n`` alerts."""
    rows = list(
        Alert.objects.filter(project=project)
        .order_by("-raised_at", "-pk")
        .values_list("item__created_at", "pushed_at", "decided_at")[:last_n]
    )
    push = [(pushed - arrived).total_seconds() for arrived, pushed, _ in rows if pushed]
    decided = [(done - arrived).total_seconds() for arrived, _, done in rows if done]
    return {
        "alerts": len(rows),
        "push": latency_of(push, pending=len(rows) - len(push)),
        "decision": latency_of(decided, pending=len(rows) - len(decided)),
    }
