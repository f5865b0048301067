"""Drift monitoring: shifted streams raise alarms that act; unshifted streams raise none.

These tests run the prediction task's code in the test process (a direct call, not eager
Celery) so that every item is predicted before the next arrives and "items from onset to alarm"
is exact; tests/reviewapp/monitoring/test_monitoring_worker.py goes through a real worker.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from reviewapp import tasks
from reviewapp.demo import stream as simulation
from reviewapp.intake import services
from reviewapp.models import (
    AlarmStatus,
    DriftAlarm,
    DriftCheck,
    DriftSample,
    Item,
    Outcome,
    Prediction,
    ReviewTask,
    RolloutEvent,
    Stage,
    TrainingRun,
)
from reviewapp.monitoring import selectors as monitoring_selectors
from reviewapp.monitoring import services as monitoring

WINDOW, EVERY = 100, 25


@pytest.fixture
def drift_settings(settings):
    settings.HANDOFF_DRIFT_WINDOW = WINDOW
    # The tests call the check themselves: inside a test transaction, the check that
    # predict_item enqueues on commit is never sent.
    settings.HANDOFF_DRIFT_CHECK_EVERY = EVERY
    return settings


def stream_inline(project, *, shift, after, count, seed=0, rate=1.0, stop_on_alarm=True):
    """Stream through ingest, predict each item in-process, check every EVERY items.

    Returns (items predicted from onset until the first alarm or None, the report).
    """
    state = {"n": 0, "alarm_at": None}

    def on_item(item, shifted):
        tasks.predict_item(item.pk)
        state["n"] += 1
        if state["n"] % EVERY == 0 and state["alarm_at"] is None:
            if monitoring.drift_check_run(project=project):
                state["alarm_at"] = state["n"]
                return not stop_on_alarm
        return True

    report = simulation.stream_simulate(
        project=project,
        shift=shift,
        after=after,
        rate=rate,
        count=count,
        seed=seed,
        enqueue_prediction=False,
        on_item=on_item,
    )
    alarm_at = state["alarm_at"]
    return (None if alarm_at is None else alarm_at - after), report


def test_unshifted_stream_raises_no_alarm_and_stores_the_series(drift_project, drift_settings):
    delay, report = stream_inline(drift_project, shift="night", after=10_000, count=300)
    assert report.created == 300 and not any(report.shifted)
    assert delay is None
    assert not DriftAlarm.objects.filter(project=drift_project).exists()
    assert (
        DriftSample.objects.filter(prediction__model_version__project=drift_project).count() == 300
    )
    series = monitoring_selectors.drift_series(project=drift_project, statistic="embedding")
    assert len(series) == 300 // EVERY - 1  # the first check waits for MIN_ITEMS embeddings
    assert series[-1].n_items == WINDOW and not series[-1].alarming
    statistics = set(DriftCheck.objects.values_list("statistic", flat=True))
    assert {"labels", "confidence", "ood_rate", "embedding", "brightness", "contrast"} <= statistics
    assert {"colourfulness", "resolution"} <= statistics
    day = DriftCheck.objects.filter(window="day").order_by("-created_at").first()
    assert day is not None and day.n_items == 300


@pytest.mark.parametrize("shift", ["night", "grayscale", "lowres"])
def test_each_shift_raises_an_alarm_within_300_items(drift_project, drift_settings, shift):
    delay, report = stream_inline(drift_project, shift=shift, after=100, count=400)
    assert delay is not None and 0 < delay <= 300, delay
    alarms = list(monitoring_selectors.alarms_open(project=drift_project))
    assert alarms
    shifted_ids = {i for i, s in zip(report.item_ids, report.shifted, strict=True) if s}
    for alarm in alarms:
        assert alarm.summary.startswith(alarm.get_statistic_display())
        assert "since" in alarm.summary and "reference" in alarm.summary
        examples = alarm.example_item_ids
        assert examples and sum(i in shifted_ids for i in examples) >= 0.75 * len(examples)
        first_shifted = Item.objects.filter(pk__in=shifted_ids).order_by("created_at").first()
        onset_error = abs((alarm.onset_at - first_shifted.created_at).total_seconds())
        assert onset_error < 60 or alarm.onset_at >= first_shifted.created_at
        assert alarm.actions["retraining"] == "offered" and alarm.actions["demoted"] is False
    drift_project.refresh_from_db()
    assert drift_project.drift_alarm_open


def test_alarm_in_automated_stage_demotes_raises_audits_and_starts_retraining(
    drift_project, drift_settings, digit_records
):
    for record in digit_records[:12]:  # labelled items for the retraining run's snapshot
        services.item_ingest(
            project=drift_project,
            data=open(record.path, "rb").read(),
            origin="base",
            client_key=record.key,
            base_label=record.label,
            enqueue_prediction=False,
        )
    drift_project.stage, drift_project.traffic_share = Stage.AUTOMATED, 1.0
    drift_project.confidence_threshold, drift_project.audit_rate = 0.0, 0.0
    drift_project.drift_retrain = True
    drift_project.save()
    delay, _ = stream_inline(drift_project, shift="night", after=100, count=250)
    assert delay is not None
    drift_project.refresh_from_db()
    assert drift_project.stage == Stage.PARTIAL
    event = RolloutEvent.objects.filter(project=drift_project, kind="stage").latest("created_at")
    assert (event.from_value, event.to_value) == (Stage.AUTOMATED, Stage.PARTIAL)
    assert "monitoring raised a drift" in event.reason and "drifted" in event.reason
    alarm = DriftAlarm.objects.filter(project=drift_project).first()
    assert (
        alarm.summary in event.reason and alarm.statistic in event.evidence["detail"]["statistics"]
    )
    assert alarm.actions["demoted"] is True and alarm.actions["from_stage"] == Stage.AUTOMATED
    run = TrainingRun.objects.get(pk=alarm.actions["training_run_id"])
    assert run.trigger == "drift" and "drifted" in run.log
    # While the alarm is open, items are audited at the raised rate (and say so, for IPW).
    _, after_alarm = stream_inline(drift_project, shift="night", after=10_000, count=20, seed=3)
    outcomes = Outcome.objects.filter(item__in=after_alarm.item_ids, decided_by="model")
    audits = ReviewTask.objects.filter(item__in=after_alarm.item_ids, reason="audit")
    probabilities = {o.audit_probability for o in outcomes} | {t.audit_probability for t in audits}
    assert outcomes.exists() and probabilities == {drift_project.drift_audit_rate}


def test_alarm_clears_when_the_stream_is_back_to_normal(drift_project, drift_settings):
    stream_inline(drift_project, shift="night", after=0, count=100, seed=1)
    assert monitoring_selectors.alarms_open(project=drift_project).exists()
    # The night images were yesterday's: today's window then holds only the normal stream
    # (an alarm stays open while any window, today's included, still flags its statistic).
    Prediction.objects.update(created_at=timezone.now() - timedelta(days=1))
    stream_inline(
        drift_project, shift="night", after=10_000, count=125, seed=2, stop_on_alarm=False
    )
    assert not monitoring_selectors.alarms_open(project=drift_project).exists()
    drift_project.refresh_from_db()
    assert not drift_project.drift_alarm_open
    cleared = monitoring_selectors.alarms_recent(project=drift_project)
    assert cleared and all(a.status == AlarmStatus.CLEARED and a.cleared_at for a in cleared)


def test_a_repeated_check_without_new_items_is_a_no_op(drift_project, drift_settings):
    stream_inline(drift_project, shift="night", after=10_000, count=50)
    before = DriftCheck.objects.count()
    assert monitoring.drift_check_run(project=drift_project) == []
    assert DriftCheck.objects.count() == before


def test_simulate_stream_command_reuses_held_out_images_under_distinct_keys(
    drift_project, drift_settings, capsys
):
    held_out = len(simulation.held_out_records())
    call_command(
        "simulate_stream",
        project=drift_project.slug,
        shift="rotate",
        after=held_out,
        count=held_out + 5,
        rate=1.0,
    )
    out = capsys.readouterr().out
    assert f"streamed {held_out + 5} new items" in out and "5 re-used" in out
    items = Item.objects.filter(project=drift_project, origin="simulation")
    assert items.count() == held_out + 5
    assert items.filter(source__simulation__shift="rotate").count() == 5
    assert not Prediction.objects.filter(item__project=drift_project).exists()  # the worker's job


@pytest.mark.django_db
def test_drift_schedule_creates_the_beat_entry_once():
    from django_celery_beat.models import PeriodicTask

    call_command("beat_setup", drift_seconds=600)
    call_command("beat_setup", drift_seconds=600)
    (entry,) = PeriodicTask.objects.filter(task="reviewapp.drift_check_all")
    assert entry.interval.every == 600 and entry.enabled
