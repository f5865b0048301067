"""A project with a day of production history, made through the services (for dashboard tests).

Each hour, items are predicted and routed by the real rollout policy (auto-accepted or queued);
reviewers decide the queued ones through ``queues.decision_submit``. The rows of each hour are
then moved back to that hour, so the dashboard's time series have a shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from reviewapp.intake import prediction_service
from reviewapp.models import (
    Alias,
    Decision,
    Item,
    Outcome,
    Prediction,
    Project,
    ReviewTask,
    Stage,
)
from reviewapp.review import services as queues
from reviewapp.rollout import services as rollout
from reviewapp.rollout import versions
from tests.factories import (
    ItemFactory,
    ModelVersionFactory,
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
)


@dataclass
class Filled:
    """What was made, for tests to compare the page with."""

    project: Project
    reviewer: object
    auto: int = 0
    human: int = 0
    agreed: int = 0
    audited: int = 0
    audited_agreed: int = 0
    human_ood: int = 0
    model_ood: int = 0
    open_tasks: int = 0
    disagreements: list[tuple[str, str]] = field(default_factory=list)  # (human, model)
    ood_item_ids: list[int] = field(default_factory=list)


def _shift(item_ids: list[int], moment) -> None:
    """Move the rows of these items to a past moment (they were made just now)."""
    Item.objects.filter(pk__in=item_ids).update(created_at=moment)
    Prediction.objects.filter(item_id__in=item_ids).update(created_at=moment)
    Outcome.objects.filter(item_id__in=item_ids).update(created_at=moment + timedelta(minutes=5))
    Decision.objects.filter(item_id__in=item_ids).update(created_at=moment + timedelta(minutes=5))
    ReviewTask.objects.filter(item_id__in=item_ids).update(created_at=moment)
    ReviewTask.objects.filter(item_id__in=item_ids, closed_at__isnull=False).update(
        closed_at=moment + timedelta(minutes=5)
    )


def _decide(filled: Filled, task, *, model_label: str, human_label: str | None) -> None:
    reviewer = filled.reviewer
    if human_label is None:
        queues.decision_submit(task=task, reviewer=reviewer, verdict="ood")
        filled.human_ood += 1
        return
    queues.decision_submit(task=task, reviewer=reviewer, verdict="correct", label=human_label)
    filled.human += 1
    filled.agreed += int(human_label == model_label)
    if task.reason == "audit":
        filled.audited += 1
        filled.audited_agreed += int(human_label == model_label)
    if human_label != model_label:
        filled.disagreements.append((human_label, model_label))


def dashboard_project_fill(*, hours: int = 12, per_hour: int = 10, leave_open: int = 4) -> Filled:
    """An automated project with ``hours`` hours of routed, reviewed items."""
    project = ProjectFactory(
        stage=Stage.AUTOMATED,
        audit_rate=0.3,
        confidence_threshold=0.9,
        gate_target_agreement=0.8,
        gate_min_reviews=10,
    )
    version = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=version, reason="t")
    alias = project.aliases.get()
    alias.started_at = timezone.now() - timedelta(days=3)
    alias.save(update_fields=["started_at"])
    project.stage_entered_at = timezone.now() - timedelta(days=2)
    project.save(update_fields=["stage_entered_at"])
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    filled = Filled(project=project, reviewer=reviewer)
    now = timezone.now()
    n = 0
    for hour in range(hours, 0, -1):
        ids = []
        for _ in range(per_hour):
            n += 1
            label = str(n % 3)
            is_ood = n % 9 == 0
            confidence = 0.6 if n % 5 == 0 else 0.97
            prediction = PredictionFactory(
                item=ItemFactory(project=project),
                model_version=version,
                label=label,
                confidence=confidence,
                is_ood=is_ood,
                ood_score=1.0 if is_ood else 0.0,
            )
            ids.append(prediction.item_id)
            filled.model_ood += int(is_ood)
            if is_ood:
                filled.ood_item_ids.append(prediction.item_id)
            task = prediction_service.prediction_route(prediction=prediction)
            if task is None:
                filled.auto += 1
                continue
            if hour == 1 and filled.open_tasks < leave_open:
                filled.open_tasks += 1
                continue
            # Low-confidence items are wrong two times in three; audits are right.
            wrong = confidence < 0.9 and n % 3 != 0
            human = None if is_ood else (str((n + 1) % 3) if wrong else label)
            _decide(filled, task, model_label=label, human_label=human)
        _shift(ids, now - timedelta(hours=hour - 1, minutes=30))
    return filled


def drift_history_add(
    *, filled: Filled, hours: int = 12, shifted_hours: int = 3, statistics=None
) -> object:
    """Hourly drift checks for a few statistics; brightness alarms in the last hours (open)."""
    from reviewapp.models import AlarmStatus, DriftAlarm, DriftCheck

    project = filled.project
    now = timezone.now()
    statistics = statistics or ["labels", "confidence", "brightness"]
    for statistic in statistics:
        for hour in range(hours, 0, -1):
            end = now - timedelta(hours=hour - 1)
            shifted = statistic == "brightness" and hour <= shifted_hours
            p_value = 1e-6 if shifted else 0.2 + 0.05 * (hour % 5)
            DriftCheck.objects.create(
                project=project,
                statistic=statistic,
                window="recent",
                window_start=end - timedelta(hours=1),
                window_end=end,
                n_items=50,
                value=0.5 if shifted else 0.05,
                p_value=p_value,
                threshold=0.001,
                alarming=p_value < 0.001,
                created_at=end,
            )
    onset = now - timedelta(hours=shifted_hours)
    summary = f"Brightness drifted far from the training reference since {onset:%H:%M} UTC."
    alarm = DriftAlarm.objects.create(
        project=project,
        statistic="brightness",
        status=AlarmStatus.OPEN,
        value=0.5,
        p_value=1e-6,
        threshold=0.001,
        onset_at=onset,
        summary=summary,
        example_item_ids=filled.ood_item_ids[:6],
    )
    # The rollout engine's monitoring hook acts on it, as reviewapp.monitoring does.
    from_stage = project.stage
    demoted = rollout.monitoring_alarm(
        project=project, kind="drift", detail={"alarm_ids": [alarm.pk]}, summary=summary
    )
    project.refresh_from_db()
    alarm.actions = {
        "demoted": demoted,
        "from_stage": from_stage,
        "to_stage": project.stage,
        "sampling_boost": project.drift_audit_rate,
        "retraining": "offered",
    }
    alarm.save(update_fields=["actions"])
    return alarm
