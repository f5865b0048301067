"""The project dashboard: numbers on the page match the data; charts are drawn; access rules."""

import re

import pytest
from django.urls import reverse

from reviewapp.monitoring import dashboard_selectors as ds
from tests.dashboard_support import dashboard_project_fill, drift_history_add
from tests.factories import ProjectFactory, ReviewerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def filled():
    return dashboard_project_fill(hours=6, per_hour=10, leave_open=3)


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)<', html, re.DOTALL)
    assert match, f"#{element_id} is not on the page"
    return match.group(1).strip()


def test_series_add_up_to_what_was_made(filled):
    project = filled.project
    window = ds.dashboard_window(project=project)
    assert window.bucket == "hour"
    automation = ds.automation_series(project=project, window=window)
    assert sum(p.k for p in automation) == filled.auto
    assert sum(p.n for p in automation) == filled.auto + filled.human + filled.human_ood
    agreement = ds.totals(ds.agreement_series(project=project, window=window))
    assert (agreement.k, agreement.n) == (filled.agreed, filled.human)
    # One audit rate throughout: every weight is equal, so the weighted counts are the plain ones.
    audited = ds.audited_accuracy_total(project=project, window=window)
    assert (audited.k, audited.n) == pytest.approx((filled.audited_agreed, filled.audited))
    series = ds.audited_accuracy_series(project=project, window=window)
    assert sum(p.n for p in series) == pytest.approx(filled.audited)
    assert audited.n > 0 and audited.low <= audited.rate <= audited.high + 1e-9
    depth = ds.queue_depth_series(project=project, window=window)
    assert depth[-1].value == filled.open_tasks
    throughput = ds.throughput_series(project=project, window=window)
    assert sum(p.value for p in throughput) == filled.human + filled.human_ood
    assert max(p.other for p in throughput) == 1
    ood = ds.ood_series(project=project, window=window)
    assert sum(p.k for p in ood["flagged by the model"]) == filled.model_ood
    assert sum(p.k for p in ood["judged by reviewers"]) == filled.human_ood


def test_production_confusion_counts_human_decisions_against_the_model(filled):
    confusion = ds.production_confusion(project=filled.project)
    assert confusion.total == filled.human
    assert confusion.agreed == filled.agreed
    assert filled.disagreements, "the fixture should contain corrections"
    top_human, top_model, top_n = confusion.pairs[0]
    assert top_n == max(filled.disagreements.count(pair) for pair in set(filled.disagreements))
    assert filled.disagreements.count((top_human, top_model)) == top_n
    shown = ds.recent_disagreements(project=filled.project)
    assert {(row["human"], row["model"]) for row in shown} <= set(filled.disagreements)


def test_dashboard_page_shows_the_numbers_and_draws_the_charts(client, filled):
    client.force_login(filled.reviewer)
    response = client.get(reverse("project", args=[filled.project.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    decided = filled.auto + filled.human + filled.human_ood
    assert _text(html, "n-decided") == str(decided)
    assert _text(html, "n-waiting") == str(filled.open_tasks)
    assert _text(html, "automation-rate") == f"{filled.auto / decided:.3f}"
    assert _text(html, "audited-accuracy") == f"{filled.audited_agreed / filled.audited:.3f}"
    assert _text(html, "agreement") == f"{filled.agreed / filled.human:.3f}"
    charts = re.findall(r'<figure class="chart" data-chart="([a-z_-]+)"><svg', html)
    assert {"automation", "accuracy", "queue", "throughput", "ood", "confusion", "gate"} <= set(
        charts
    )
    assert "<style" not in html  # the CSP refuses inline style elements
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "inline SVGs must not share ids (clip paths would mix)"
    # Out-of-domain items and disagreements are shown as pictures of the items themselves.
    for item_id in filled.ood_item_ids[-3:]:
        assert reverse("item-image", args=[item_id]) in html


def test_dashboard_is_drawn_once_per_data(client, filled, django_assert_max_num_queries):
    client.force_login(filled.reviewer)
    url = reverse("project", args=[filled.project.slug])
    client.get(url)
    # The second view reads the same series; its charts come from the cache, and the queries
    # stay a fixed handful whatever the number of items.
    with django_assert_max_num_queries(40):
        assert client.get(url).status_code == 200


def test_empty_project_dashboard_renders(client):
    project = ProjectFactory()
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    response = client.get(reverse("project", args=[project.slug]))
    assert response.status_code == 200
    assert b"No human decisions with a model suggestion yet." in response.content


def test_reviewer_of_another_project_is_refused(client, filled):
    outsider = ReviewerFactory()
    ProjectFactory().reviewers.add(outsider)
    client.force_login(outsider)
    response = client.get(reverse("project", args=[filled.project.slug]))
    assert response.status_code == 403
    assert str(filled.auto) not in _headline_or_empty(response.content.decode())


def _headline_or_empty(html: str) -> str:
    match = re.search(r'id="headline".*?</section>', html, re.DOTALL)
    return match.group(0) if match else ""


def test_anonymous_user_is_sent_to_log_in(client, filled):
    response = client.get(reverse("project", args=[filled.project.slug]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_open_drift_alarm_is_on_the_page_with_its_chart_and_metric(client, filled, settings):
    alarm = drift_history_add(filled=filled)
    client.force_login(filled.reviewer)
    html = client.get(reverse("project", args=[filled.project.slug])).content.decode()
    assert 'id="drift-alarms"' in html
    assert alarm.summary in html
    for item_id in alarm.example_item_ids:
        assert reverse("item-image", args=[item_id]) in html
    assert "demoted automated → partial" in html
    assert {"drift-labels", "drift-confidence", "drift-brightness"} <= set(
        re.findall(r'data-chart="(drift-[a-z_]+)"', html)
    )
    settings.HANDOFF_METRICS_TOKEN = "t" * 32
    metrics = client.get(reverse("metrics"), headers={"Authorization": "Bearer " + "t" * 32})
    line = (
        f'handoff_drift_alarms_open{{project="{filled.project.slug}",statistic="brightness"}} 1.0'
    )
    assert line in metrics.content.decode()
