"""Drift monitoring reads: the series of checks, open and recent alarms."""

from __future__ import annotations

from django.db.models import QuerySet

from reviewapp.models import AlarmStatus, DriftAlarm, DriftCheck, DriftWindow, Project

SERIES_LIMIT = 500


def drift_series(
    *, project: Project, statistic: str, window: str = DriftWindow.RECENT, limit: int = SERIES_LIMIT
) -> list[DriftCheck]:
    """The latest `limit` checks of one statistic over one window, oldest first (for charts)."""
    rows = DriftCheck.objects.filter(project=project, statistic=statistic, window=window).order_by(
        "-created_at", "-pk"
    )[:limit]
    return list(rows)[::-1]


def alarms_open(*, project: Project) -> QuerySet[DriftAlarm]:
    """The project's open alarms, newest first."""
    return DriftAlarm.objects.filter(project=project, status=AlarmStatus.OPEN).order_by(
        "-raised_at"
    )


def alarms_recent(*, project: Project, limit: int = 20) -> list[DriftAlarm]:
    """The project's latest alarms, open or cleared, newest first."""
    return list(DriftAlarm.objects.filter(project=project).order_by("-raised_at", "-pk")[:limit])
