"""The periodic jobs, written once: what Celery beat runs, how often by default, under what name.

``manage.py beat_setup`` creates or updates the django-celery-beat entries from this table (and,
with ``--project``, a cron entry that retrains one project); admins edit them afterwards in the
admin. The entry names are stable: re-running the command updates entries, never duplicates them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from reviewapp import jobs
from reviewapp.models import Project, RunTrigger


@dataclass(frozen=True)
class Periodic:
    """One beat entry: its name in the admin, the task it sends, its group and interval."""

    name: str
    task: str
    group: str
    seconds: int


PERIODIC = (
    Periodic("reviewapp.sweep_predictions", jobs.SWEEP_PREDICTIONS, "prediction", 30),
    Periodic("Rollout check: demotion and auto-promotion", jobs.ROLLOUT_CHECK, "rollout", 300),
    Periodic("Fail training runs without heartbeat", jobs.REAP_TRAINING_RUNS, "training", 60),
    Periodic("Retrain after N new corrections", jobs.CHECK_RETRAIN_TRIGGERS, "training", 60),
    Periodic("Drift check: every project", jobs.DRIFT_CHECK_ALL, "drift", 900),
    Periodic("Escalate unclaimed alerts", jobs.ALERTS_ESCALATE, "alerts", 30),
)
GROUPS = tuple(sorted({entry.group for entry in PERIODIC}))


def beat_entries_setup(*, seconds: dict[str, int] | None = None) -> list[Periodic]:
    """Create or update every periodic entry; ``seconds`` overrides the interval per group."""
    seconds = seconds or {}
    unknown = set(seconds) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown schedule groups {sorted(unknown)}; known: {list(GROUPS)}")
    written = []
    for entry in PERIODIC:
        every = int(seconds.get(entry.group, entry.seconds))
        if every < 1:
            raise ValueError(f"{entry.group}: the interval must be at least 1 second")
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=every, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.update_or_create(
            name=entry.name,
            defaults={"task": entry.task, "interval": interval, "crontab": None, "enabled": True},
        )
        written.append(Periodic(entry.name, entry.task, entry.group, every))
    return written


def beat_project_retrain_setup(*, project: Project, crontab: str, enabled: bool = True) -> str:
    """A cron schedule ("m h dom mon dow") that retrains one project; returns the entry's name."""
    fields = crontab.split()
    if len(fields) != 5:
        raise ValidationError(f"{crontab!r} is not a 5-field cron expression")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    with transaction.atomic():
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
        name = f"Retrain {project.slug} on schedule"
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": jobs.RETRAIN_PROJECT,
                "crontab": schedule,
                "interval": None,
                "kwargs": json.dumps({"project_id": project.pk, "trigger": RunTrigger.SCHEDULE}),
                "enabled": enabled,
            },
        )
    return name
