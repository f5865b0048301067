"""Alert latency on the dashboard: arrival -> push and arrival -> decision, against hand values."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reviewapp.models import Alert
from reviewapp.monitoring import alert_latency
from tests.factories import ItemFactory, ProjectFactory, ReviewerFactory

pytestmark = pytest.mark.django_db


def _alert(project, *, arrived, push_s=None, decide_s=None, raised_s=0.5):
    item = ItemFactory(project=project, created_at=arrived)
    return Alert.objects.create(
        project=project,
        item=item,
        label="stroke",
        reason="top1",
        probability=0.9,
        raised_at=arrived + timedelta(seconds=raised_s),
        pushed_at=arrived + timedelta(seconds=push_s) if push_s is not None else None,
        decided_at=arrived + timedelta(seconds=decide_s) if decide_s is not None else None,
    )


def test_median_and_p90_over_the_last_n_alerts_match_hand_computed_values():
    project = ProjectFactory(labels=["normal", "stroke"], priority_labels=["stroke"])
    start = timezone.now() - timedelta(hours=2)
    # The oldest alert falls outside the last 5 and must not count.
    _alert(project, arrived=start, push_s=1000, decide_s=9000)
    pushes = [4, 1, 10, 3, 2]
    decisions = [120, 60, None, 600, None]  # two still undecided
    for index, (push, decide) in enumerate(zip(pushes, decisions, strict=True)):
        _alert(project, arrived=start + timedelta(minutes=index + 1), push_s=push, decide_s=decide)

    figures = alert_latency.alert_latency(project=project, last_n=5)

    assert figures["alerts"] == 5
    push = figures["push"]
    # Sorted 1 2 3 4 10: median 3; p90 at rank 0.9 * 4 = 3.6 -> 4 + 0.6 * (10 - 4) = 7.6.
    assert (push.n, push.pending, push.median) == (5, 0, 3.0)
    assert push.p90 == pytest.approx(7.6)
    decision = figures["decision"]
    # Sorted 60 120 600: median 120; p90 at rank 0.9 * 2 = 1.8 -> 120 + 0.8 * 480 = 504.
    assert (decision.n, decision.pending, decision.median) == (3, 2, 120.0)
    assert decision.p90 == pytest.approx(504.0)


def test_no_alerts_gives_no_figures():
    figures = alert_latency.alert_latency(project=ProjectFactory())
    assert figures["alerts"] == 0 and figures["push"].median is None


def test_the_dashboard_shows_the_latency_table(client):
    project = ProjectFactory(labels=["normal", "stroke"], priority_labels=["stroke"])
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    start = timezone.now() - timedelta(minutes=30)
    _alert(project, arrived=start, push_s=2, decide_s=90)
    _alert(project, arrived=start + timedelta(minutes=1), push_s=4, decide_s=None)
    client.force_login(reviewer)
    page = client.get(reverse("project", args=[project.slug])).content.decode()
    assert 'id="alert-latency"' in page
    push_row = page.split('id="alert-latency-push"')[1].split("</tr>")[0]
    assert "3.0 s" in push_row  # median of 2 and 4
    decision_row = page.split('id="alert-latency-decision"')[1].split("</tr>")[0]
    assert "90.0 s" in decision_row and "<td>1</td>" in decision_row
