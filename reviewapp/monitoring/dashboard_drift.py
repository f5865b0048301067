"""The dashboard's drift panel: each statistic's checks over time and the open alarms."""

from __future__ import annotations

from typing import Any

from reviewapp.models import DriftCheck, DriftStatistic, DriftWindow, Project
from reviewapp.monitoring import charts
from reviewapp.monitoring import selectors as monitoring_selectors


def drift_panel(*, project: Project) -> dict[str, Any]:
    """Charts of every statistic checked so far (recent window) and the open alarms."""
    statistics = set(
        DriftCheck.objects.filter(project=project, window=DriftWindow.RECENT)
        .values_list("statistic", flat=True)
        .distinct()
    )
    recent = monitoring_selectors.alarms_recent(project=project)
    drawn = []
    for statistic in DriftStatistic:  # a fixed order: the same chart in the same place
        if statistic.value not in statistics:
            continue
        checks = monitoring_selectors.drift_series(project=project, statistic=statistic.value)
        alarms = [a for a in recent if a.statistic == statistic.value]
        drawn.append(
            charts.drift_chart(
                name=f"drift-{statistic.value}",
                title=statistic.label,
                checks=checks,
                onsets=[(a.onset_at, a.status == "open") for a in alarms],
            )
        )
    return {
        "charts": drawn,
        "alarms": list(monitoring_selectors.alarms_open(project=project)),
    }
