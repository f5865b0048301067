"""A rollout admin reads the reviewer-quality page in a real browser; the training run page
shows its loss chart with axes, values and epoch marks after the run has finished."""

import pytest

from reviewapp.models import RunState, RunTrigger, TrainingRun
from tests.factories import ProjectFactory, RolloutAdminFactory
from tests.reviewapp.review.test_quality_figures import scene  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


def _sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/", timeout=60_000)  # a busy machine
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_admin_reads_reviewer_quality_with_its_charts(page, live_server, scene):  # noqa: F811
    admin = RolloutAdminFactory(username="quality-admin")
    _sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/projects/{scene.slug}/")
    page.click("#quality-link")
    page.wait_for_selector("#reviewer-table")
    row = page.locator('#reviewer-table tr[data-reviewer="a"]')
    assert row.locator(".gold-accuracy").inner_text() == "0.500"
    assert row.locator(".gold-n").inner_text() == "2"
    assert row.locator(".kappa").inner_text().startswith("0.500")
    assert row.locator(".median-seconds").inner_text() == "2.0"
    assert "below" in row.locator(".bar").inner_text()
    b_row = page.locator('#reviewer-table tr[data-reviewer="b"]')
    assert b_row.locator(".undo-rate").inner_text() == "0.200"
    assert "0.677" in page.inner_text("#fleiss")
    # The charts are drawn, visible and name every reviewer.
    chart = page.locator("#chart-gold svg")
    assert chart.is_visible() and chart.bounding_box()["width"] > 250
    labels = page.locator("#chart-gold svg text").all_text_contents()
    assert {"a", "b", "c"} <= {t.strip() for t in labels}
    assert any("n=2" in t for t in labels)
    page.click("#gold-import-link")
    page.wait_for_selector("#gold-import-button")


def test_the_loss_chart_reads_live_and_after_the_run(page, live_server):
    project = ProjectFactory()
    history = [
        [round(i / 12, 4), 2.0 - i * 0.12, None if i % 4 else 1.9 - i * 0.1] for i in range(1, 13)
    ]
    detail = {"epoch": 1, "epochs": 3, "batch": 2, "batches": 4, "history": history[:6]}
    run = TrainingRun.objects.create(
        project=project,
        trigger=RunTrigger.MANUAL,
        state=RunState.RUNNING,
        params={"epochs": 3, "arch": "resnet18", "image_size": 32},
        progress=0.5,
        progress_detail=detail,
    )
    _sign_in(page, live_server, RolloutAdminFactory(username="chart-admin"))
    page.goto(f"{live_server.url}/training/runs/{run.pk}/")
    # Live: the polled status draws the first half of the run.
    page.wait_for_function(
        "document.getElementById('progress-text').textContent.includes('epoch 2/3')"
    )
    assert len(page.locator("#train-loss").get_attribute("points").split()) == 6
    # The run finishes: the page reloads itself and draws the whole run from the saved history.
    detail = {**detail, "epoch": 2, "batch": 4, "history": history}
    TrainingRun.objects.filter(pk=run.pk).update(
        state=RunState.SUCCEEDED, progress=1.0, progress_detail=detail
    )
    page.wait_for_function(
        "document.getElementById('run-state').textContent.trim() === 'Succeeded'"
        " && document.getElementById('live').dataset.active === '0'"
    )
    page.wait_for_selector("#loss-chart #train-loss")
    chart = page.locator("#loss-chart")
    box = chart.bounding_box()
    assert box["width"] > 500 and box["height"] > 200  # readable, not a 120 px strip
    points = page.locator("#train-loss").get_attribute("points").split()
    assert len(points) == 12
    assert page.locator("#valid-loss").count() == 1
    assert page.locator("#loss-chart line.axis").count() == 2
    assert page.locator("#loss-chart line.epoch-mark").count() == 2  # between 3 epochs
    x_ticks = page.locator("#loss-chart text.x-tick").all_text_contents()
    assert x_ticks == ["0", "1", "2", "3"]
    y_ticks = page.locator("#loss-chart text.y-tick").all_text_contents()
    assert y_ticks[0] == "0.000" and len(y_ticks) >= 3
    titles = page.locator("#loss-chart text.axis-title").all_text_contents()
    assert titles == ["epoch", "loss"]
    assert "train loss 0.560" in page.inner_text("#loss-values")
    assert "validation loss 0.700" in page.inner_text("#loss-values")
