"""The quality page's figures against values computed by hand."""

import math
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reviewapp.models import Decision, ReviewReason, ReviewTask, Verdict
from reviewapp.review import quality_figures
from tests.factories import ItemFactory, ProjectFactory, ReviewerFactory, RolloutAdminFactory

pytestmark = pytest.mark.django_db


def _decision(item, reviewer, label, *, seconds=None, gold=False, undone=False, at=0):
    task = ReviewTask.objects.create(
        project=item.project,
        item=item,
        reason=ReviewReason.SHADOW,
        status="done",
        gold_check=gold,
    )
    return Decision.objects.create(
        task=task,
        item=item,
        reviewer=reviewer,
        verdict=Verdict.CORRECT,
        label=label,
        duration_ms=None if seconds is None else int(seconds * 1000),
        created_at=timezone.now() - timedelta(minutes=60 - at),
        undone_at=timezone.now() if undone else None,
    )


@pytest.fixture
def scene():
    """Reviewers a, b, c on one project:

    items 1-4 decided by a and b:  a = 1 1 2 2,  b = 1 2 2 2
    item 5 decided by a and c:     a = 3,        c = 3
    gold items (known 5 and 7) answered by a:  5 (right), 6 (wrong)
    item 6 decided by b, then undone.
    """
    project = ProjectFactory(gold_min_accuracy=0.75, gold_min_n=2)
    a, b, c = (ReviewerFactory(username=name) for name in "abc")
    items = [ItemFactory(project=project) for _ in range(6)]
    for n, (item, first, second) in enumerate(zip(items[:4], "1122", "1222", strict=True)):
        _decision(item, a, first, seconds=n + 1, at=n)
        _decision(item, b, second, seconds=10, at=n)
    _decision(items[4], a, "3", seconds=5, at=10)
    _decision(items[4], c, "3", at=11)
    _decision(
        ItemFactory(project=project, is_gold=True, gold_label="5"), a, "5", seconds=1, gold=True
    )
    _decision(
        ItemFactory(project=project, is_gold=True, gold_label="7"), a, "6", seconds=1, gold=True
    )
    _decision(items[5], b, "4", seconds=10, undone=True)
    return project


def test_figures_match_the_hand_computed_values(scene):
    figures = quality_figures.project_quality(project=scene)
    people = {r.username: r for r in figures.reviewers}
    a, b, c = people["a"], people["b"], people["c"]
    # Accuracy on gold: a answered two gold items, one right.
    assert (a.gold_correct, a.gold_n, a.gold_accuracy) == (1, 2, 0.5)
    assert b.gold_accuracy is None and b.gold_n == 0
    assert a.below_bar and not b.below_bar  # 0.5 < 0.75 after 2 answers
    # Cohen's kappa a-b on items 1-4: p_o = 3/4; p_e = .5*.25 + .5*.75 = .5; (.75-.5)/.5 = .5.
    pairs = {(p.first, p.second): p for p in figures.pairs}
    assert pairs["a", "b"].items == 4 and pairs["a", "b"].kappa == pytest.approx(0.5)
    assert pairs["a", "c"].items == 1 and pairs["a", "c"].kappa is None  # one shared item
    assert ("b", "c") not in pairs
    assert a.kappa == pytest.approx(0.5) and a.kappa_items == 4
    assert b.kappa == pytest.approx(0.5) and c.kappa is None
    # Fleiss over items 1-5, two ratings each: P = (1+0+1+1+1)/5 = .8; p = (.3, .5, .2),
    # P_e = .09+.25+.04 = .38; kappa = (.8-.38)/(1-.38).
    assert figures.fleiss_items == 5
    assert figures.fleiss == pytest.approx(0.42 / 0.62)
    # Speed: a's durations 1,2,3,4,5,1,1 s: median 2 s, 7 decisions in 17 s of desk time.
    assert a.median_seconds == 2 and a.per_hour == pytest.approx(3600 * 7 / 17)
    assert c.median_seconds is None and c.per_hour is None
    # Undo rate: b made 5 decisions and undid one.
    assert (b.decisions, b.undone, b.undo_rate) == (4, 1, 0.2)
    assert a.undo_rate == 0


def test_fleiss_counts_the_first_two_ratings_and_ignores_single_ones():
    value, items = quality_figures.fleiss_over({1: ["x", "x", "y"], 2: ["y", "y"], 3: ["x"]})
    # Items 1 and 2 (x x | y y): perfect agreement.
    assert items == 2 and value == pytest.approx(1.0)
    assert quality_figures.fleiss_over({1: ["x"]}) == (None, 0)


def test_the_quality_page_shows_the_figures_to_rollout_admins(client, scene):
    client.force_login(RolloutAdminFactory())
    page = client.get(reverse("quality", args=[scene.slug])).content.decode()
    assert 'data-reviewer="a"' in page and "0.500" in page  # a's accuracy on gold
    assert f"{0.42 / 0.62:.3f}" in page  # Fleiss' kappa
    assert "below: double-reviewed" in page
    assert page.count("<svg") >= 3 and "Accuracy on gold items" in page
    reviewer = ReviewerFactory()
    scene.reviewers.add(reviewer)
    client.force_login(reviewer)
    assert client.get(reverse("quality", args=[scene.slug])).status_code == 403
    assert not math.isnan(quality_figures.project_quality(project=scene).fleiss)


def test_the_quality_page_reads_a_window_of_decisions(client, scene):
    """Decisions older than the window are left out; ?days=0 shows all time."""
    Decision.objects.filter(item__project=scene, reviewer__username="c").update(
        created_at=timezone.now() - timedelta(days=40)
    )
    recent = quality_figures.project_quality(
        project=scene, since=timezone.now() - timedelta(days=30)
    )
    assert "c" not in {r.username for r in recent.reviewers}
    everything = quality_figures.project_quality(project=scene)
    assert "c" in {r.username for r in everything.reviewers}
    client.force_login(RolloutAdminFactory())
    url = reverse("quality", args=[scene.slug])
    assert 'data-reviewer="c"' in client.get(url).content.decode()  # default: 90 days
    page = client.get(url + "?days=30").content.decode()
    assert 'data-reviewer="c"' not in page and "<strong>last 30 days</strong>" in page
    assert 'data-reviewer="c"' in client.get(url + "?days=0").content.decode()
    assert client.get(url + "?days=banana").status_code == 200  # an unknown window: the default
