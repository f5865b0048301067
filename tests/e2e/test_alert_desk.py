"""A reviewer sees an open alert on the desk, its item first, and acknowledges it in a browser."""

from pathlib import Path

import pytest

from reviewapp import tasks
from reviewapp.demo import seed as demo
from reviewapp.intake import services
from reviewapp.models import Alert, ReviewReason
from reviewapp.rollout import versions

pytestmark = pytest.mark.browser

PASSWORD = "a-long-demo-password-for-tests"


@pytest.fixture
def alerted_desk(live_server, settings, tiny_artifact, digit_records):
    """The demo project where every label is a priority label, with two predicted items."""
    settings.HANDOFF_DEMO_REVIEWER_PASSWORD = PASSWORD
    settings.HANDOFF_DEMO_ADMIN_PASSWORD = PASSWORD + "-admin"
    _, reviewer = demo.demo_users(lambda line: None)
    project = demo.demo_project(reviewer)
    versions.champion_register(project=project, artifact=tiny_artifact, reason="e2e")
    project.priority_labels = list(project.labels)
    project.alert_deadline_minutes = 30
    project.save()
    for record in digit_records[1710:1712]:
        item, _ = services.item_ingest(
            project=project,
            data=Path(record.path).read_bytes(),
            client_key=record.key,
            enqueue_prediction=False,
        )
        tasks.predict_item.run(item.pk)  # the worker's code path, called directly
    return project, reviewer


def test_reviewer_sees_the_alert_and_acknowledges_it(page, live_server, alerted_desk):
    project, reviewer = alerted_desk
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "demo-reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Projects")
    page.goto(f"{live_server.url}/projects/{project.slug}/review/")

    banner = page.wait_for_selector("#alerts")
    assert "Open alerts" in banner.inner_text()
    assert page.locator("#alerts li.alert").count() == 2
    assert "30 min left" in page.locator("#alerts li.alert").first.inner_text()
    shown = int(page.get_attribute("#item", "data-task"))
    assert Alert.objects.filter(item__tasks__pk=shown).exists()
    assert Alert.objects.get(item__tasks__pk=shown).item.tasks.get().reason == ReviewReason.PRIORITY

    first = Alert.objects.order_by("raised_at").first()
    page.click(f"#alerts li[data-alert='{first.pk}'] button")
    page.wait_for_selector(f"#alerts li[data-alert='{first.pk}']", state="detached")
    page.wait_for_selector("text=You took the")
    assert page.locator("#alerts li.alert").count() == 1
    first.refresh_from_db()
    assert first.acknowledged_by == reviewer and first.acknowledged_at is not None
