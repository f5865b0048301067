"""The database enforces the domain's invariants, whatever the Python code does."""

import pytest
from django.db import IntegrityError, transaction

from reviewapp.models import (
    AliasAssignment,
    DecidedBy,
    Outcome,
    ReviewReason,
    ReviewTask,
    RolloutEvent,
    TaskStatus,
    TrainingRun,
)
from tests.factories import (
    ItemFactory,
    ModelVersionFactory,
    PredictionFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db


def _prediction(item, version):
    return PredictionFactory(item=item, model_version=version)


def test_one_prediction_per_item_and_model_version():
    item = ItemFactory()
    version = ModelVersionFactory(project=item.project)
    _prediction(item, version)
    with pytest.raises(IntegrityError), transaction.atomic():
        _prediction(item, version)
    other = ModelVersionFactory(project=item.project)
    assert _prediction(item, other).pk


def test_one_open_task_per_item_and_reason_but_closed_ones_may_repeat():
    item = ItemFactory()
    first = ReviewTask.objects.create(project=item.project, item=item, reason=ReviewReason.SHADOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewTask.objects.create(project=item.project, item=item, reason=ReviewReason.SHADOW)
    ReviewTask.objects.create(project=item.project, item=item, reason=ReviewReason.AUDIT)
    first.status = TaskStatus.DONE
    first.save(update_fields=["status"])
    assert ReviewTask.objects.create(project=item.project, item=item, reason=ReviewReason.SHADOW)


def test_one_final_outcome_per_item():
    item = ItemFactory()
    Outcome.objects.create(item=item, label="1", decided_by=DecidedBy.HUMAN)
    with pytest.raises(IntegrityError), transaction.atomic():
        Outcome.objects.create(item=item, label="2", decided_by=DecidedBy.HUMAN)


def test_one_current_holder_per_alias():
    version = ModelVersionFactory()
    AliasAssignment.objects.create(project=version.project, alias="champion", model_version=version)
    with pytest.raises(IntegrityError), transaction.atomic():
        AliasAssignment.objects.create(
            project=version.project, alias="champion", model_version=version
        )


def test_one_active_training_run_per_project():
    project = ProjectFactory()
    TrainingRun.objects.create(project=project, trigger="manual")
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(project=project, trigger="manual")


def test_traffic_share_must_be_a_fraction():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectFactory(traffic_share=1.5)


def test_rollout_events_are_append_only():
    event = RolloutEvent.objects.create(
        project=ProjectFactory(), kind="stage", actor_label="system", reason="test"
    )
    event.reason = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    assert RolloutEvent.objects.get(pk=event.pk).reason == "test"
