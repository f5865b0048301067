"""The demo reviewer logs in and decides items in a real browser."""

from pathlib import Path

import pytest

from reviewapp import demo, services, tasks
from reviewapp.models import Alias, Outcome, ReviewTask, Stage, Verdict

pytestmark = pytest.mark.browser

PASSWORD = "a-long-demo-password-for-tests"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def demo_desk(live_server, settings, tiny_artifact, digit_records):
    """The demo project with its reviewer, the tiny champion and three predicted items."""
    settings.HANDOFF_DEMO_REVIEWER_PASSWORD = PASSWORD
    settings.HANDOFF_DEMO_ADMIN_PASSWORD = PASSWORD + "-admin"
    admin, reviewer = demo.demo_users(lambda line: None)
    project = demo.demo_project(reviewer)
    version = services.model_version_register(
        project=project,
        artifact_path=str(tiny_artifact.path),
        sha256=tiny_artifact.sha256,
        metadata=tiny_artifact.metadata,
    )
    services.alias_set(project=project, alias=Alias.CHAMPION, model_version=version, reason="e2e")
    items = []
    for record in digit_records[1700:1703]:
        item, _ = services.item_ingest(
            project=project,
            data=Path(record.path).read_bytes(),
            client_key=record.key,
            enqueue_prediction=False,
        )
        tasks.predict_item.run(item.pk)  # the worker's code path, called directly
        items.append(item)
    return project, items


def _log_in(page, live_server):
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "demo-reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Projects")


def test_demo_reviewer_decides_blind_by_keyboard_and_click(page, live_server, demo_desk):
    project, items = demo_desk
    _log_in(page, live_server)
    page.click(f"a[href='/projects/{project.slug}/review/']")
    page.wait_for_selector("#item-image")
    assert page.is_visible("#blind-note") and not page.is_visible("#suggestion")
    assert page.evaluate("document.getElementById('item-image').naturalWidth") > 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reviewer-desk.png"))

    first_task = ReviewTask.objects.get(claimed_by__username="demo-reviewer", status="claimed")
    page.keyboard.press("7")
    page.wait_for_function(
        f"document.querySelector('[data-task]')?.dataset.task !== '{first_task.pk}'"
    )
    outcome = Outcome.objects.get(item=first_task.item)
    assert outcome.label == "7" and outcome.decided_by == "human"
    assert outcome.decision.duration_ms is not None

    second_task = ReviewTask.objects.get(claimed_by__username="demo-reviewer", status="claimed")
    page.click("button.label-button[value='3']")
    page.wait_for_function(
        f"document.querySelector('[data-task]')?.dataset.task !== '{second_task.pk}'"
    )
    assert Outcome.objects.get(item=second_task.item).label == "3"

    third_task = ReviewTask.objects.get(claimed_by__username="demo-reviewer", status="claimed")
    page.keyboard.press("x")
    page.wait_for_selector("#queue-empty")
    assert Outcome.objects.get(item=third_task.item).is_out_of_domain
    assert Outcome.objects.filter(item__in=items).count() == 3


def test_supervised_stage_shows_the_suggestion_and_enter_confirms(page, live_server, demo_desk):
    project, items = demo_desk
    project.stage = Stage.SUPERVISED
    project.save(update_fields=["stage"])
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{project.slug}/review/")
    page.wait_for_selector("#suggestion")
    task = ReviewTask.objects.get(claimed_by__username="demo-reviewer", status="claimed")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('[data-task]')?.dataset.task !== '{task.pk}'")
    decision = Outcome.objects.get(item=task.item).decision
    assert decision.verdict == Verdict.CONFIRM and decision.suggestion_shown
    assert decision.label == task.prediction.label
