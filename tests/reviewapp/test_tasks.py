"""The prediction task: idempotent, safe on missing items, stable name."""

import pytest

from reviewapp import tasks
from reviewapp.models import Prediction, ReviewReason, ReviewTask
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_task_names_are_pinned():
    # Renaming a task strands the messages already queued under the old name.
    assert tasks.predict_item.name == "reviewapp.predict_item"
    assert tasks.drift_check.name == "reviewapp.drift_check"
    assert tasks.drift_check_all.name == "reviewapp.drift_check_all"


def test_missing_item_logs_and_returns(caplog):
    assert tasks.predict_item.run(987654) == "missing"
    assert "predict_item.missing" in caplog.text
    assert not Prediction.objects.exists()


def test_predicting_twice_stores_one_prediction_and_one_task(champion_project):
    item = ItemFactory(project=champion_project)
    assert tasks.predict_item.run(item.pk) == "predicted"
    assert tasks.predict_item.run(item.pk) == "already-predicted"
    prediction = Prediction.objects.get(item=item)
    assert prediction.label in champion_project.labels
    assert 0 <= prediction.confidence <= 1
    assert abs(sum(prediction.probabilities.values()) - 1) < 1e-3
    task = ReviewTask.objects.get(item=item)
    assert task.reason == ReviewReason.SHADOW and task.prediction == prediction


def test_priority_labels_go_to_the_priority_queue(champion_project):
    champion_project.priority_labels = list(champion_project.labels)
    champion_project.save(update_fields=["priority_labels"])
    item = ItemFactory(project=champion_project)
    tasks.predict_item.run(item.pk)
    task = ReviewTask.objects.get(item=item)
    assert task.reason == ReviewReason.PRIORITY and task.priority == 100


def test_no_champion_leaves_the_item_waiting():
    item = ItemFactory()
    assert tasks.predict_item.run(item.pk) == "no-champion"
    assert not ReviewTask.objects.exists()
