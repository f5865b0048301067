"""Drift monitoring end to end on real parts: simulate_stream -> ingest -> a real Celery worker
predicts and runs the drift checks it enqueues -> alarm -> the rollout engine demotes."""

import pytest
from django.core.management import call_command

from reviewapp.models import DriftAlarm, DriftCheck, Prediction, RolloutEvent, Stage
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker]


@pytest.fixture
def drift_worker_env(monkeypatch):
    """Small windows for the worker process (it reads settings from its environment)."""
    monkeypatch.setenv("HANDOFF_DRIFT_WINDOW", "100")
    monkeypatch.setenv("HANDOFF_DRIFT_CHECK_EVERY", "25")


@pytest.fixture
def drift_worker(drift_worker_env, celery_worker):
    return celery_worker


def test_night_shift_in_automated_stage_demotes_through_the_worker(drift_project, drift_worker):
    drift_project.stage, drift_project.traffic_share = Stage.AUTOMATED, 1.0
    drift_project.save(update_fields=["stage", "traffic_share"])
    call_command("simulate_stream", project=drift_project.slug, shift="night", after=100, count=300)
    log = drift_worker.log_path
    alarm = wait_for(
        lambda: DriftAlarm.objects.filter(project=drift_project).first(),
        timeout=300,
        message=f"no drift alarm; worker log:\n{log.read_text()[-3000:]}",
    )
    wait_for(
        lambda: RolloutEvent.objects.filter(project=drift_project, to_value=Stage.PARTIAL).exists(),
        timeout=30,
        message="the alarm did not demote the project",
    )
    drift_project.refresh_from_db()
    assert drift_project.stage == Stage.PARTIAL and drift_project.drift_alarm_open
    event = RolloutEvent.objects.get(project=drift_project, to_value=Stage.PARTIAL)
    assert event.from_value == Stage.AUTOMATED and event.actor is None
    assert "monitoring raised a drift" in event.reason and alarm.summary in event.reason
    # The alarm came from the worker's own checks, within 300 items of the onset.
    predicted_before_alarm = Prediction.objects.filter(
        item__project=drift_project, created_at__lte=alarm.raised_at
    ).count()
    assert 100 < predicted_before_alarm <= 400
    assert DriftCheck.objects.filter(project=drift_project, alarming=False).exists()
    alarm.refresh_from_db()
    assert alarm.actions["demoted"] is True and alarm.actions["retraining"] == "offered"
