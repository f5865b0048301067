"""Training pages and services: permissions, one run at a time, cancel, reaper, gate, beat."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from reviewapp import tasks
from reviewapp.models import (
    Alias,
    Decision,
    ItemOrigin,
    ReviewTask,
    RunState,
    RunTrigger,
    TrainingRun,
    Verdict,
)
from reviewapp.rollout import versions
from reviewapp.training import evaluation
from reviewapp.training import services as training
from reviewapp.training import triggers as retraining
from tests.factories import (
    ItemFactory,
    ModelVersionFactory,
    ProjectFactory,
    ReviewerFactory,
    RolloutAdminFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = ProjectFactory()
    for _ in range(12):
        ItemFactory(project=project, origin=ItemOrigin.BASE, base_label="4")
    return project


def _login(client, user):
    client.force_login(user)
    return client


def test_task_names_are_pinned():
    assert tasks.train_model.name == "reviewapp.train_model"
    assert tasks.reap_training_runs.name == "reviewapp.reap_training_runs"
    assert tasks.retrain_project.name == "reviewapp.retrain_project"
    assert tasks.check_retrain_triggers.name == "reviewapp.check_retrain_triggers"


def test_reviewers_see_runs_but_get_403_on_every_action(client, project):
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    run = training.training_run_start(project=project, trigger=RunTrigger.MANUAL)
    _login(client, reviewer)
    assert client.get(reverse("training-run", args=[run.pk])).status_code == 200
    assert client.post(reverse("training-start", args=[project.slug])).status_code == 403
    for name in ("cancel", "retry", "challenger", "promote"):
        response = client.post(reverse(f"training-run-{name}", args=[run.pk]))
        assert response.status_code == 403, name
        assert "Can start and cancel training runs" in response.content.decode()
    assert TrainingRun.objects.get(pk=run.pk).state == RunState.QUEUED


def test_admin_retrains_from_the_form_and_a_second_click_is_refused(client, project):
    admin = _login(client, RolloutAdminFactory())
    page = admin.get(reverse("training", args=[project.slug]))
    assert b'id="retrain-button"' in page.content
    form = {"arch": "resnet18", "epochs": 2, "image_size": 32, "resize_method": "pad"}
    form |= {"augment": "none", "lr": "0.003"}
    response = admin.post(reverse("training-start", args=[project.slug]), form)
    run = TrainingRun.objects.get(project=project)
    assert response.url == reverse("training-run", args=[run.pk])
    assert run.params | {"lr": 0.003, "epochs": 2, "resize_method": "pad"} == run.params
    assert len(run.snapshot) == 12 and run.state == RunState.QUEUED
    again = admin.post(reverse("training-start", args=[project.slug]), form, follow=True)
    assert "already queued or running" in again.content.decode()
    assert TrainingRun.objects.filter(project=project).count() == 1
    find_lr = form | {"find_lr": "on"}
    training.training_run_cancel(run=run)
    admin.post(reverse("training-start", args=[project.slug]), find_lr)
    assert TrainingRun.objects.filter(project=project).latest("pk").params["lr"] is None


def test_status_json_reports_progress_and_log_tail(client, project):
    run = training.training_run_start(project=project, trigger=RunTrigger.MANUAL)
    TrainingRun.objects.filter(pk=run.pk).update(
        state=RunState.RUNNING,
        progress=0.4,
        progress_detail={"epoch": 1, "epochs": 3, "history": [[0.2, 2.1, None], [0.4, 1.7, 1.9]]},
    )
    training._log(run.pk, "hello from the worker")
    _login(client, RolloutAdminFactory())
    status = client.get(reverse("training-run-status", args=[run.pk])).json()
    assert status["active"] and status["progress"] == 0.4 and status["detail"]["epochs"] == 3
    assert status["history"][-1] == [0.4, 1.7, 1.9]
    assert status["log_tail"][-1].endswith("hello from the worker")


def test_cancel_a_queued_run_and_retry_it_from_the_same_snapshot(client, project):
    run = training.training_run_start(project=project, trigger=RunTrigger.MANUAL)
    admin = _login(client, RolloutAdminFactory())
    admin.post(reverse("training-run-cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    response = admin.post(reverse("training-run-retry", args=[run.pk]))
    retry = TrainingRun.objects.get(retry_of=run)
    assert response.url == reverse("training-run", args=[retry.pk])
    assert retry.snapshot == run.snapshot and retry.snapshot_hash == run.snapshot_hash
    assert retry.trigger == RunTrigger.RETRY and retry.state == RunState.QUEUED


def test_cancelling_a_running_run_sets_the_flag_the_worker_polls(project):
    run = training.training_run_start(project=project, trigger=RunTrigger.MANUAL)
    TrainingRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    assert training.training_run_cancel(run=run) == RunState.RUNNING
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested


def test_reaper_fails_runs_without_heartbeat_and_spares_live_ones(project):
    other = ProjectFactory()
    for _ in range(12):
        ItemFactory(project=other, origin=ItemOrigin.BASE, base_label="1")
    dead = training.training_run_start(project=project, trigger=RunTrigger.MANUAL)
    alive = training.training_run_start(project=other, trigger=RunTrigger.MANUAL)
    now = timezone.now()
    TrainingRun.objects.filter(pk=dead.pk).update(
        state=RunState.RUNNING, heartbeat_at=now - timedelta(minutes=10)
    )
    TrainingRun.objects.filter(pk=alive.pk).update(state=RunState.RUNNING, heartbeat_at=now)
    assert tasks.reap_training_runs.run(stale_seconds=120) == 1
    dead.refresh_from_db()
    assert dead.state == RunState.FAILED and "heartbeat" in dead.error
    assert TrainingRun.objects.get(pk=alive.pk).state == RunState.RUNNING


def _correction(project, reviewer):
    item = ItemFactory(project=project)
    task = ReviewTask.objects.create(project=project, item=item, reason="shadow", status="done")
    Decision.objects.create(
        task=task, item=item, reviewer=reviewer, verdict=Verdict.CORRECT, label="2"
    )


def test_every_n_corrections_starts_one_run(project):
    project.retrain_every_corrections = 3
    project.save(update_fields=["retrain_every_corrections"])
    reviewer = ReviewerFactory()
    for _ in range(2):
        _correction(project, reviewer)
    assert retraining.training_check_corrections() == []
    _correction(project, reviewer)
    (run_id,) = retraining.training_check_corrections()
    run = TrainingRun.objects.get(pk=run_id)
    assert run.trigger == RunTrigger.CORRECTIONS and "3 new corrections" in run.log
    assert retraining.training_check_corrections() == []  # counted from the new run on


def test_drift_and_schedule_triggers_are_refused_while_a_run_is_active(project):
    run = retraining.training_on_drift(project=project, reason="embedding MMD above threshold")
    assert run.trigger == RunTrigger.DRIFT
    assert tasks.retrain_project.run(project.pk, trigger=RunTrigger.SCHEDULE) is None
    assert TrainingRun.objects.filter(project=project).count() == 1


def test_beat_entries_are_created_and_editable(project):
    call_command("beat_setup", "--project", project.slug, "--cron", "30 2 * * 1")
    names = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {"reviewapp.reap_training_runs", "reviewapp.check_retrain_triggers"} <= names
    entry = PeriodicTask.objects.get(task="reviewapp.retrain_project")
    assert entry.crontab.hour == "2" and f'"project_id": {project.pk}' in entry.kwargs


def _succeeded_run(project, holdout):
    run = training.training_run_start(project=project, trigger=RunTrigger.MANUAL)
    TrainingRun.objects.filter(pk=run.pk).update(
        state=RunState.SUCCEEDED, evaluation={"sets": {"holdout": holdout}}
    )
    run.refresh_from_db()
    ModelVersionFactory(project=project, training_run=run, number=2)
    return run


def _holdout(n, candidate, champion):
    def score(correct):
        return {"correct": correct, "ci": list(evaluation.wilson_interval(correct, n))}

    return {"n": n, "candidate": score(candidate), "champion": score(champion)}


def test_holdout_evidence_compares_candidate_and_champion_on_the_same_items(project):
    project.gate_min_reviews, project.gate_target_agreement = 50, 0.9
    project.save()
    worse = _succeeded_run(project, _holdout(100, 95, 97))
    passed, why = evaluation.promotion_gate(run=worse)
    assert not passed and "95/100" in why and "97/100" in why
    TrainingRun.objects.filter(pk=worse.pk).update(
        evaluation={"sets": {"holdout": _holdout(100, 99, 97)}}
    )
    worse.refresh_from_db()
    assert evaluation.promotion_gate(run=worse)[0]
    assert not evaluation.promotion_gate(run=_replaced(worse, _holdout(20, 20, 10)))[0]


def _replaced(run, holdout):
    run.evaluation = {"sets": {"holdout": holdout}}
    return run


def test_promote_goes_through_the_rollout_gate_after_make_challenger(client, project):
    champion = ModelVersionFactory(project=project, number=1)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=champion, reason="t")
    admin = _login(client, RolloutAdminFactory())
    run = _succeeded_run(project, _holdout(100, 99, 97))
    page = admin.post(reverse("training-run-promote", args=[run.pk]), follow=True)
    assert "make this candidate the challenger first" in page.content.decode()
    admin.post(reverse("training-run-challenger", args=[run.pk]))
    challenger = project.aliases.get(alias=Alias.CHALLENGER, ended_at__isnull=True)
    assert challenger.model_version.training_run_id == run.pk
    page = admin.post(reverse("training-run-promote", args=[run.pk]), follow=True)
    assert "gate does not pass" in page.content.decode()  # no reviewed shadow evidence yet
    assert versions.champion_of(project) == champion


def test_wilson_interval_matches_the_textbook():
    low, high = evaluation.wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-3) and high == pytest.approx(0.3662, abs=1e-3)
    assert evaluation.wilson_interval(0, 0) == (0.0, 1.0)
