"""Gold items: marking (admin action, CSV import, adjudication), blind mixing, scoring, the bar."""

import random

import pytest
from django.urls import reverse

from reviewapp.intake import prediction_service
from reviewapp.models import (
    DecidedBy,
    Decision,
    Item,
    Outcome,
    ReviewReason,
    ReviewTask,
    TaskStatus,
    Verdict,
)
from reviewapp.review import claim, gold, quality, quality_figures
from reviewapp.review import services as queues
from reviewapp.training import triggers
from tests.factories import (
    ItemFactory,
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _gold_item(project, label="5", **fields):
    return ItemFactory(project=project, is_gold=True, gold_label=label, **fields)


def _gold_task(project, item, reason=ReviewReason.SHADOW):
    return ReviewTask.objects.create(
        project=project, item=item, reason=reason, priority=20, gold_check=True
    )


def _decide(task, reviewer, label):
    return queues.decision_submit(
        task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label=label
    )


# Marking -------------------------------------------------------------------------------------


def test_admin_action_marks_items_with_a_known_label_and_leaves_the_others(client):
    project = ProjectFactory()
    base = ItemFactory(project=project, base_label="4")
    decided = ItemFactory(project=project)
    Outcome.objects.create(item=decided, label="7", decided_by=DecidedBy.HUMAN)
    unknown = ItemFactory(project=project)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:reviewapp_item_changelist"),
        {"action": "gold_mark", "_selected_action": [base.pk, decided.pk, unknown.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "2 items marked as gold" in response.content.decode()
    assert f"no known label and were left as they were: {unknown.pk}" in response.content.decode()
    rows = dict(Item.objects.filter(is_gold=True).values_list("pk", "gold_label"))
    assert rows == {base.pk: "4", decided.pk: "7"}

    client.post(
        reverse("admin:reviewapp_item_changelist"),
        {"action": "gold_clear", "_selected_action": [base.pk]},
    )
    assert set(Item.objects.filter(is_gold=True).values_list("pk", flat=True)) == {decided.pk}


def _csv(client, project, text):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("gold.csv", text.encode(), content_type="text/csv")
    return client.post(reverse("gold-import", args=[project.slug]), {"file": upload})


def test_csv_import_marks_items_by_key_and_client_key(client):
    project = ProjectFactory()
    first = ItemFactory(project=project, key="cat-001")
    second = ItemFactory(project=project, client_key="client-9")
    client.force_login(RolloutAdminFactory())
    response = _csv(client, project, "key,label\ncat-001,3\nclient-9,8\n")
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_gold, first.gold_label) == (True, "3")
    assert (second.is_gold, second.gold_label) == (True, "8")


def test_a_bad_csv_stores_nothing_and_names_each_wrong_row(client):
    project = ProjectFactory()
    good = ItemFactory(project=project, key="good")
    ItemFactory(project=project, key="other")
    client.force_login(RolloutAdminFactory())
    text = "key,label\ngood,3\nmissing,4\nother,cat\ngood,5\n,1\n"
    response = _csv(client, project, text)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was stored" in page
    assert "line 3: no item of" in page and "&#x27;missing&#x27;" in page
    assert "line 4: &#x27;cat&#x27; is not a label" in page
    assert "line 5: key &#x27;good&#x27; appears twice" in page
    assert "line 6: the key is empty" in page
    good.refresh_from_db()
    assert not good.is_gold and not Item.objects.filter(is_gold=True).exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("name,label\na,1\n", "The first line must be the header key,label."),
        ("key,label\n", "The file has no rows after its header."),
    ],
)
def test_a_csv_without_its_header_or_rows_is_refused(client, text, message):
    project = ProjectFactory()
    ItemFactory(project=project, key="a")
    client.force_login(RolloutAdminFactory())
    response = _csv(client, project, text)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Item.objects.filter(is_gold=True).exists()


def test_an_adjudicated_item_is_promoted_with_the_adjudicators_label(client):
    project = ProjectFactory(double_review_rate=1.0)
    task = ReviewTaskFactory(prediction=PredictionFactory(item=ItemFactory(project=project)))
    first, second, admin = ReviewerFactory(), ReviewerFactory(), RolloutAdminFactory()
    _decide(task, first, "1")
    double = claim.task_claim_next(project=project, reviewer=second)
    _decide(double, second, "2")
    adjudication = ReviewTask.objects.get(item=task.item, reason=ReviewReason.ADJUDICATION)
    _decide(adjudication, admin, "2")
    plain = ItemFactory(project=project)
    Outcome.objects.create(item=plain, label="4", decided_by=DecidedBy.HUMAN)

    client.force_login(admin)
    page = client.get(reverse("quality", args=[project.slug])).content.decode()
    assert reverse("gold-promote", args=[project.slug, task.item_id]) in page
    client.post(reverse("gold-promote", args=[project.slug, task.item_id]))
    task.item.refresh_from_db()
    assert (task.item.is_gold, task.item.gold_label) == (True, "2")
    response = client.post(reverse("gold-promote", args=[project.slug, plain.pk]), follow=True)
    assert "Only an item whose outcome was adjudicated" in response.content.decode()
    plain.refresh_from_db()
    assert not plain.is_gold


# Blind mixing --------------------------------------------------------------------------------


def test_gold_tasks_join_the_queue_at_the_projects_rate():
    project = ProjectFactory(gold_rate=0.2)
    golds = [_gold_item(project, label=str(i)) for i in range(3)]
    rng, mixed = random.Random(20), 0
    for _ in range(400):
        task = ReviewTaskFactory(prediction=PredictionFactory(item=ItemFactory(project=project)))
        gold_task = gold.gold_task_mix_maybe(task=task, rng=rng)
        if gold_task is not None:
            mixed += 1
            assert gold_task.item_id in {g.pk for g in golds}
            assert (gold_task.reason, gold_task.priority) == (task.reason, task.priority)
            gold_task.status = TaskStatus.DONE  # answered: the item may come again
            gold_task.save(update_fields=["status"])
    # Binomial(400, 0.2): mean 80, sd 8; the seed makes it one fixed draw.
    assert 56 <= mixed <= 104
    assert ReviewTask.objects.filter(gold_check=True).count() == mixed


def test_no_gold_task_without_a_rate_or_a_free_gold_item():
    project = ProjectFactory(gold_rate=0.0)
    gold_item = _gold_item(project)
    task = ReviewTaskFactory(prediction=PredictionFactory(item=ItemFactory(project=project)))
    assert gold.gold_task_mix_maybe(task=task, rng=random.Random(1)) is None
    project.gold_rate = 1.0
    project.save(update_fields=["gold_rate"])
    _gold_task(project, gold_item)  # its only gold item is already waiting
    assert gold.gold_task_mix_maybe(task=task, rng=random.Random(1)) is None


def test_routing_a_new_prediction_brings_a_gold_task_along():
    project = ProjectFactory(gold_rate=1.0)
    gold_item = _gold_item(project)
    gold_prediction = PredictionFactory(item=gold_item, label="5")
    prediction = PredictionFactory(item=ItemFactory(project=project))
    task = prediction_service.prediction_route(prediction=prediction)
    gold_task = ReviewTask.objects.get(gold_check=True)
    assert gold_task.item == gold_item and gold_task.prediction == gold_prediction
    assert gold_task.reason == task.reason == ReviewReason.SHADOW


def test_the_desk_shows_no_tell_of_a_gold_task(client):
    project = ProjectFactory()
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    plain = ReviewTaskFactory(prediction=PredictionFactory(item=ItemFactory(project=project)))
    gold_item = _gold_item(project, label="3")
    gold_task = ReviewTask.objects.create(
        project=project,
        item=gold_item,
        prediction=PredictionFactory(item=gold_item),
        reason=plain.reason,
        priority=plain.priority,
        gold_check=True,
    )
    client.force_login(reviewer)
    page = client.get(reverse("desk", args=[project.slug])).content.decode()
    first = client.get(reverse("desk-next", args=[project.slug]) + f"?held={plain.pk}")
    assert first.json()["task"]["id"] == gold_task.pk
    assert "gold" not in page.lower() and "gold" not in first.content.decode().lower()
    shown = {plain.pk: None, gold_task.pk: first.json()["task"]}
    claim_plain = client.get(reverse("desk-next", args=[project.slug]) + f"?held={gold_task.pk}")
    shown[plain.pk] = claim_plain.json()["task"]
    assert shown[plain.pk]["id"] == plain.pk
    assert shown[plain.pk].keys() == shown[gold_task.pk].keys()
    assert shown[plain.pk]["reason"] == shown[gold_task.pk]["reason"]


# Scoring and the quality bar -----------------------------------------------------------------


def test_a_gold_decision_is_scored_not_made_the_items_outcome():
    project = ProjectFactory()
    gold_item = _gold_item(project, label="5")
    Outcome.objects.create(item=gold_item, label="5", decided_by=DecidedBy.HUMAN)
    reviewer = ReviewerFactory()
    right = _decide(_gold_task(project, gold_item), reviewer, "5")
    wrong = _decide(_gold_task(project, gold_item), reviewer, "6")
    assert Outcome.objects.get(item=gold_item).label == "5"  # unchanged, not a second outcome
    assert Outcome.objects.filter(decision__in=[right, wrong]).count() == 0
    assert quality.gold_accuracy(project=project, reviewer=reviewer) == (1, 2)
    assert triggers.corrections_since_last_run(project=project) == 0  # not a correction
    figures = quality_figures.project_quality(project=project)
    assert (figures.reviewers[0].gold_correct, figures.reviewers[0].gold_n) == (1, 2)
    # Undoing a gold answer takes it out of the score and leaves the outcome and the item's
    # own follow-up review alone.
    follow_up = ReviewTask.objects.create(
        project=project, item=gold_item, reason=ReviewReason.DOUBLE_REVIEW, priority=10
    )
    queues.decision_undo(project=project, reviewer=reviewer)
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.OPEN
    assert quality.gold_accuracy(project=project, reviewer=reviewer) == (1, 1)
    assert Outcome.objects.get(item=gold_item).label == "5"


def test_a_reviewer_below_the_bar_is_double_reviewed_automatically():
    project = ProjectFactory(gold_min_accuracy=0.8, gold_min_n=2, double_review_rate=0.0)
    weak, strong = ReviewerFactory(), ReviewerFactory()
    for reviewer, answer in ((weak, "6"), (strong, "5")):
        for _ in range(2):
            _decide(_gold_task(project, _gold_item(project, label="5")), reviewer, answer)
    assert quality.reviewer_below_bar(project=project, reviewer=weak)
    assert not quality.reviewer_below_bar(project=project, reviewer=strong)

    weak_task = ReviewTaskFactory(prediction=PredictionFactory(item=ItemFactory(project=project)))
    strong_task = ReviewTaskFactory(prediction=PredictionFactory(item=ItemFactory(project=project)))
    _decide(weak_task, weak, "1")
    _decide(strong_task, strong, "1")
    doubles = ReviewTask.objects.filter(reason=ReviewReason.DOUBLE_REVIEW)
    assert list(doubles.values_list("item_id", flat=True)) == [weak_task.item_id]
    # The second look goes to somebody else, and a disagreement reaches adjudication.
    assert claim.task_claim_next(project=project, reviewer=weak) is None
    second = claim.task_claim_next(project=project, reviewer=strong)
    assert second.item_id == weak_task.item_id
    _decide(second, strong, "2")
    assert ReviewTask.objects.filter(item=weak_task.item, reason=ReviewReason.ADJUDICATION).exists()
    figures = {r.username: r for r in quality_figures.project_quality(project=project).reviewers}
    assert figures[weak.username].below_bar and not figures[strong.username].below_bar


def test_the_bar_waits_for_enough_gold_answers():
    project = ProjectFactory(gold_min_accuracy=0.9, gold_min_n=3)
    reviewer = ReviewerFactory()
    for _ in range(2):
        _decide(_gold_task(project, _gold_item(project, label="5")), reviewer, "0")
    assert not quality.reviewer_below_bar(project=project, reviewer=reviewer)
    task = ReviewTaskFactory(prediction=PredictionFactory(item=ItemFactory(project=project)))
    _decide(task, reviewer, "1")
    assert not ReviewTask.objects.filter(reason=ReviewReason.DOUBLE_REVIEW).exists()
    assert Decision.objects.filter(reviewer=reviewer).count() == 3


def test_a_reviewer_never_gets_a_gold_item_they_have_answered_again():
    """They would remember its label: a gold task for an item they decided goes to somebody
    else (the SQL claim on PostgreSQL, its ORM twin elsewhere)."""
    project = ProjectFactory(labels=["3", "5"])
    first, second = ReviewerFactory(), ReviewerFactory()
    project.reviewers.add(first, second)
    item = _gold_item(project)
    answered = claim.task_claim_next(project=project, reviewer=first)
    assert answered is None  # nothing open yet
    _decide(_gold_task(project, item), first, "5")
    again = _gold_task(project, item)
    assert claim.task_claim_next(project=project, reviewer=first) is None
    assert claim.task_claim_next(project=project, reviewer=second).pk == again.pk
