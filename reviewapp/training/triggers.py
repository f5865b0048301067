"""Automatic retraining triggers (new corrections, schedule, drift alarm) and their beat setup.

An automatic trigger never runs beside an active run: it is refused (logged, returns None), and
the next check or schedule tick tries again.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError

from reviewapp.models import Decision, Project, RunTrigger, TrainingRun, Verdict
from reviewapp.training import services as training

logger = logging.getLogger(__name__)


def training_trigger(*, project: Project, trigger: str, reason: str = "") -> TrainingRun | None:
    """Request a run for an automatic trigger; None (and a log line) when one is active."""
    try:
        run = training.training_run_request(project=project, trigger=trigger)
    except ValidationError as exc:
        logger.info(
            "training.trigger_refused project=%s trigger=%s why=%s",
            project.slug,
            trigger,
            " ".join(exc.messages),
        )
        return None
    if reason:
        training._log(run.pk, f"triggered: {reason}")
    return run


def corrections_since_last_run(*, project: Project) -> int:
    """Reviewer corrections (not undone) since the project's last training run was created."""
    last = TrainingRun.objects.filter(project=project).order_by("-created_at").first()
    corrections = Decision.objects.filter(
        item__project=project, verdict=Verdict.CORRECT, undone_at__isnull=True
    ).exclude(task__gold_check=True)  # a wrong answer on a gold item teaches the model nothing
    if last is not None:
        corrections = corrections.filter(created_at__gt=last.created_at)
    return corrections.count()


def training_check_corrections() -> list[int]:
    """Start a run in every project that collected its 'retrain every N corrections'."""
    started = []
    for project in Project.objects.filter(retrain_every_corrections__isnull=False):
        count = corrections_since_last_run(project=project)
        if count < project.retrain_every_corrections:
            continue
        run = training_trigger(
            project=project,
            trigger=RunTrigger.CORRECTIONS,
            reason=f"{count} new corrections (threshold {project.retrain_every_corrections})",
        )
        if run is not None:
            started.append(run.pk)
    return started


def training_on_drift(*, project: Project, reason: str) -> TrainingRun | None:
    """Retrain because a drift alarm fired (call this from the drift monitor)."""
    return training_trigger(project=project, trigger=RunTrigger.DRIFT, reason=f"drift: {reason}")
