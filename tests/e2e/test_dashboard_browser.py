"""The project dashboard in a real browser: charts are drawn, the drift alarm is shown."""

import os
import shutil
from pathlib import Path

import pytest

from tests.dashboard_support import dashboard_project_fill, drift_history_add

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"


@pytest.fixture
def dashboard_project(live_server):
    filled = dashboard_project_fill(hours=12, per_hour=12, leave_open=4)
    alarm = drift_history_add(filled=filled)
    return filled, alarm


def test_dashboard_shows_charts_and_the_open_alarm(page, live_server, dashboard_project, tmp_path):
    filled, alarm = dashboard_project
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", filled.reviewer.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Projects")
    page.goto(f"{live_server.url}/projects/{filled.project.slug}/")

    charts = page.locator("figure.chart")
    names = set(charts.evaluate_all("els => els.map(e => e.dataset.chart)"))
    expected = {"gate", "automation", "accuracy", "queue", "throughput", "ood", "confusion"}
    assert expected | {"drift-labels", "drift-confidence", "drift-brightness"} <= names
    for name in names:  # each chart is an SVG the browser laid out with real size and lines
        box = page.locator(f'figure.chart[data-chart="{name}"] svg').bounding_box()
        assert box and box["width"] > 200 and box["height"] > 60, name
        assert page.locator(f'figure.chart[data-chart="{name}"] svg path').count() > 5, name

    alarm_box = page.locator("#drift-alarms")
    assert alarm_box.is_visible()
    assert "Brightness drifted far from the training reference" in alarm_box.inner_text()
    examples = alarm_box.locator("img")
    assert examples.count() == len(alarm.example_item_ids)
    assert all(examples.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(2))
    brightness = page.locator('figure.chart[data-chart="drift-brightness"]')
    assert "onset" in brightness.inner_text() and "alarm threshold" in brightness.inner_text()
    assert page.inner_text("#n-waiting") == str(filled.open_tasks)
    # The alarm demoted the project through the rollout engine, and the page says why.
    assert page.get_attribute("#stage", "data-stage") == "partial"
    assert "monitoring raised a drift alarm" in page.inner_text("#demotion-reason")
    assert "demoted automated → partial" in alarm_box.inner_text()

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    if os.environ.get("HANDOFF_UPDATE_SCREENSHOTS"):  # refresh the README's picture
        top = tmp_path / "dashboard-top.png"
        page.screenshot(
            path=str(top), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 3300}
        )
        shutil.copyfile(top, DOCS_SCREENSHOT)
