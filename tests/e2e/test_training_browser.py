"""An admin retrains from the browser on a real training worker and enters the challenger."""

import pytest

from reviewapp.models import Alias, ModelVersion, RunState, TrainingRun
from tests.factories import RolloutAdminFactory
from tests.training_support import labeled_project, training_worker_factory  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.worker]

PASSWORD = "correct horse battery"


def test_admin_retrains_watches_progress_and_makes_the_challenger(
    page,
    live_server,
    training_worker_factory,  # noqa: F811
    digit_records,
    tiny_artifact,
):
    project = labeled_project(records=digit_records[:240], artifact=tiny_artifact)
    admin = RolloutAdminFactory(username="retrain-admin")
    worker = training_worker_factory()

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.click("#training-link")
    page.fill("#id_epochs", "3")
    page.select_option("#id_resize_method", "pad")
    page.click("#retrain-button")
    page.wait_for_selector("#progress-fill")
    run = TrainingRun.objects.get(project=project)

    def bar_width() -> float:
        return page.evaluate("parseFloat(document.getElementById('progress-fill').style.width)")

    page.wait_for_function(
        "parseFloat(document.getElementById('progress-fill').style.width) > 0"
        " && parseFloat(document.getElementById('progress-fill').style.width) < 100",
        timeout=180_000,
    )
    moving = bar_width()
    assert 0 < moving < 100  # seen mid-run, without reloading
    assert "epoch" in page.inner_text("#progress-text")
    page.wait_for_selector("#result", timeout=240_000)  # the page reloads itself when done
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, f"{run.error}\n{worker.log_text()}"
    assert page.is_visible("#comparison") and "validation" in page.inner_text("#comparison")
    page.wait_for_function(
        "document.getElementById('confusion-matrix').complete"
        " && document.getElementById('confusion-matrix').naturalWidth > 100",
        timeout=60_000,
    )
    assert page.locator("#top-losses figure").count() > 0
    candidate = ModelVersion.objects.get(training_run=run)

    page.click("#challenger-button")
    page.wait_for_selector("text=The candidate is now the challenger.")
    holder = project.aliases.get(alias=Alias.CHALLENGER, ended_at__isnull=True)
    assert holder.model_version == candidate and holder.actor == admin
