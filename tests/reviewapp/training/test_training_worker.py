"""A real training worker SIGKILLed mid-run: failed run, champion intact, retry works."""

from datetime import timedelta

import pytest

from reviewapp.models import ModelVersion, RunState, RunTrigger, TrainingRun
from reviewapp.rollout import versions
from reviewapp.training import services as training
from tests.conftest import wait_for
from tests.training_support import FAST_PARAMS, labeled_project, training_worker_factory  # noqa: F401

pytestmark = [pytest.mark.worker]


def test_sigkill_mid_run_fails_the_run_and_a_retry_succeeds(
    training_worker_factory,  # noqa: F811
    digit_records,
    tiny_artifact,
):
    project = labeled_project(records=digit_records[:200], artifact=tiny_artifact)
    champion = versions.champion_of(project)
    worker = training_worker_factory()
    run = training.training_run_request(
        project=project, trigger=RunTrigger.MANUAL, params=FAST_PARAMS | {"epochs": 4}
    )

    def mid_run():
        run.refresh_from_db()
        return run.state == RunState.RUNNING and 0 < run.progress < 0.5

    wait_for(mid_run, timeout=180, message=f"run never got going:\n{worker.log_text()}")
    worker.kill()

    wait_for(
        lambda: training.training_runs_reap(stale_after=timedelta(seconds=3)),
        timeout=30,
        message="the reaper never failed the silent run",
    )
    run.refresh_from_db()
    assert run.state == RunState.FAILED and "heartbeat" in run.error
    assert not ModelVersion.objects.filter(project=project).exclude(pk=champion.pk).exists()
    assert versions.champion_of(project) == champion

    training_worker_factory()
    retry = training.training_run_retry(run=run)
    assert retry.snapshot_hash == run.snapshot_hash

    def finished():
        retry.refresh_from_db()
        return retry.state not in (RunState.QUEUED, RunState.RUNNING)

    wait_for(finished, timeout=240, message="the retry did not finish")
    assert retry.state == RunState.SUCCEEDED, retry.error
    candidate = ModelVersion.objects.get(training_run=retry)
    assert candidate.metadata["dataset_hash"] == run.snapshot_hash
    assert versions.champion_of(project) == champion  # a candidate, not promoted
    assert TrainingRun.objects.get(pk=run.pk).state == RunState.FAILED
