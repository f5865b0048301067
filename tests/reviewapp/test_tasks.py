"""The prediction task: idempotent, safe on missing items, stable name."""

from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from reviewapp import tasks
from reviewapp.models import Prediction, ReviewReason, ReviewTask
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_task_names_are_pinned():
    # Renaming a task strands the messages already queued under the old name.
    assert tasks.predict_item.name == "reviewapp.predict_item"
    assert tasks.predict_batch.name == "reviewapp.predict_batch"
    assert tasks.drift_check.name == "reviewapp.drift_check"
    assert tasks.drift_check_all.name == "reviewapp.drift_check_all"


def test_every_task_is_sent_by_a_pinned_name_and_every_pinned_name_has_its_task():
    """Services send tasks by name (reviewapp.jobs): the names and the registered tasks agree."""
    from config.celery import app
    from reviewapp import jobs

    registered = {name for name in app.tasks if name.startswith("reviewapp.")}
    assert registered == set(jobs.TASK_NAMES)
    assert {
        "reviewapp.predict_item",
        "reviewapp.predict_batch",
        "reviewapp.sweep_predictions",
        "reviewapp.train_model",
        "reviewapp.reap_training_runs",
        "reviewapp.retrain_project",
        "reviewapp.check_retrain_triggers",
        "reviewapp.rollout_check",
        "reviewapp.deliver_webhook",
        "reviewapp.drift_check",
        "reviewapp.drift_check_all",
        "reviewapp.export_edge_bundle",
        "reviewapp.alert_notify",
        "reviewapp.alerts_escalate",
    } == set(jobs.TASK_NAMES)


def test_an_unknown_task_name_is_refused_before_anything_is_sent():
    from reviewapp import jobs

    with pytest.raises(ValueError, match="unknown task"):
        jobs.job_send("reviewapp.predict_itme", 1)


def test_missing_item_logs_and_returns(caplog):
    assert tasks.predict_item.run(987654) == "missing"
    assert "predict_item.missing" in caplog.text
    assert not Prediction.objects.exists()


def test_predicting_twice_stores_one_prediction_and_one_task(champion_project, digit_records):
    # A digit like those the champion learned from (a plain-colour square would be out of its
    # domain, and the item-level guard would send it to a person as out_of_domain).
    image = ContentFile(Path(digit_records[450].path).read_bytes(), name="digit.png")
    item = ItemFactory(project=champion_project, image=image, width=32, height=32)
    assert tasks.predict_item.run(item.pk) == "predicted"
    assert tasks.predict_item.run(item.pk) == "already-predicted"
    prediction = Prediction.objects.get(item=item)
    assert prediction.label in champion_project.labels
    assert 0 <= prediction.confidence <= 1
    assert abs(sum(prediction.probabilities.values()) - 1) < 1e-3
    task = ReviewTask.objects.get(item=item)
    # The shadow stage's task, unless the tiny model itself calls the digit out of its domain.
    expected = ReviewReason.OUT_OF_DOMAIN if prediction.is_ood else ReviewReason.SHADOW
    assert task.reason == expected and task.prediction == prediction


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
