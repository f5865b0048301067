"""A rollout admin reads the error budget and the per-class table, watches a class graduate
after blind reviews, promotes through a passing gate, is refused by a failing one, flips the
kill switch; a reviewer cannot reach these controls. Real browser, real server."""

import pytest

from reviewapp.intake import prediction_service
from reviewapp.models import Alias, Prediction, RolloutEvent, Stage
from reviewapp.review import services as queues
from reviewapp.rollout import services as rollout
from reviewapp.rollout import versions
from tests.factories import (
    ItemFactory,
    ModelVersionFactory,
    ProjectFactory,
    ReviewerFactory,
    RolloutAdminFactory,
)

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


def _reviewed(project, version, reviewer, n, label):
    for _ in range(n):
        project.refresh_from_db()
        item = ItemFactory(project=project)
        prediction = Prediction.objects.create(
            item=item,
            model_version=version,
            label=label,
            confidence=0.99,
            probabilities={label: 0.99},
            ood_score=0.0,
            latency_ms=1.0,
        )
        task = prediction_service.prediction_route(prediction=prediction)
        queues.decision_submit(task=task, reviewer=reviewer, verdict="correct", label=label)


@pytest.fixture
def rollout_project(live_server):
    project = ProjectFactory(
        error_budget=0.1,
        error_delta=0.2,  # classes 0 and 1, each tested at 0.1: 22 clean blind labels certify
        priority_labels=[str(d) for d in range(2, 10)],
    )
    version = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=version, reason="e2e")
    reviewer = ReviewerFactory(username="rita")
    project.reviewers.add(reviewer)
    RolloutAdminFactory(username="ada")
    _reviewed(project, version, reviewer, 12, "0")
    _reviewed(project, version, reviewer, 5, "1")
    rollout.project_check(project=project)  # what the beat's reviewapp.rollout_check does
    return project, version, reviewer


def _log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Projects")


def _row(page, label):
    return page.locator(f"#class-table tr[data-class='{label}']")


def test_a_class_graduates_after_blind_reviews_then_admin_promotes_and_kills(
    page, live_server, rollout_project
):
    project, version, reviewer = rollout_project
    _log_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.click("#rollout-link")
    words = page.inner_text("#error-budget-words")
    assert words == (
        "The model's solo decisions may be wrong at most 10% of the time, with 80% confidence."
    )
    assert _row(page, "0").get_attribute("data-state") == "manual"
    assert "needs ~10 more blind reviews" in _row(page, "0").inner_text()
    assert "needs ~17 more blind reviews" in _row(page, "1").inner_text()
    assert page.inner_text("#gate-status") == "does not pass"
    page.click("#promote")
    page.wait_for_selector("text=The gate does not pass")
    # Ten more blind reviews of class 0, then the periodic check: class 0 graduates alone.
    _reviewed(project, version, reviewer, 10, "0")
    rollout.project_check(project=project)
    page.reload()
    assert _row(page, "0").get_attribute("data-state") == "automated"
    assert _row(page, "0").locator(".blind-n").inner_text() == "22"
    assert _row(page, "0").locator(".threshold").inner_text() != "—"
    assert "nothing" in _row(page, "0").locator(".needs").inner_text()
    assert _row(page, "1").get_attribute("data-state") == "manual"
    assert "Class 0 earned automation" in page.inner_text("#timeline")
    assert page.inner_text("#gate-status") == "passes"
    page.fill("#promote-form input[name=reason]", "class 0 earned it")
    page.click("#promote")
    page.wait_for_selector("text=Promoted to supervised.")
    assert page.get_attribute("#stage", "data-stage") == "supervised"
    page.fill("#kill-switch-form input[name=reason]", "bad batch from camera 3")
    page.click("#kill-switch")
    page.wait_for_selector("#kill-switch-on")
    assert page.get_attribute("#stage", "data-stage") == "shadow"
    assert "bad batch from camera 3" in page.inner_text("#timeline")
    project.refresh_from_db()
    assert project.stage == Stage.SHADOW and project.kill_switch
    assert list(
        RolloutEvent.objects.filter(project=project, actor__isnull=False)
        .order_by("created_at")
        .values_list("kind", "actor_label")
    )[-2:] == [("stage", "ada"), ("kill_switch", "ada")]


def test_reviewer_cannot_reach_the_controls(page, live_server, rollout_project):
    project, *_ = rollout_project
    _log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    assert page.locator("#rollout-link").count() == 0
    response = page.goto(f"{live_server.url}/projects/{project.slug}/rollout/")
    assert response.status == 403 and "rollout admins" in page.content()
    assert page.locator("#promote").count() == 0
    project.refresh_from_db()
    assert project.stage == Stage.SHADOW
