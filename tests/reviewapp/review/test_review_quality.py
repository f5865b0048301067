"""Undo, double review, adjudication, lease renewal and reviewer statistics."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.models import (
    Decision,
    Outcome,
    ReviewReason,
    ReviewTask,
    TaskStatus,
    TrainingRun,
    Verdict,
)
from reviewapp.review import claim, selectors
from reviewapp.review import services as queues
from tests.factories import (
    ItemFactory,
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
)

pytestmark = pytest.mark.django_db


def _task(project, *, label="3", **item_fields):
    item = ItemFactory(project=project, **item_fields)
    return ReviewTaskFactory(prediction=PredictionFactory(item=item, label=label))


def _decide(task, reviewer, label):
    return queues.decision_submit(
        task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label=label
    )


def test_undo_brings_the_item_back_and_keeps_the_record():
    project = ProjectFactory()
    task = _task(project)
    reviewer = ReviewerFactory()
    claim.task_claim_next(project=project, reviewer=reviewer)
    decision = _decide(task, reviewer, "8")
    back = queues.decision_undo(project=project, reviewer=reviewer)
    assert back.pk == task.pk
    assert back.status == TaskStatus.CLAIMED and back.claimed_by == reviewer
    assert not Outcome.objects.filter(item=task.item).exists()
    decision.refresh_from_db()
    assert decision.undone_at is not None  # recorded, not erased
    assert claim.task_claim_next(project=project, reviewer=reviewer) == task
    _decide(task, reviewer, "3")
    assert Outcome.objects.get(item=task.item).label == "3"
    assert Decision.objects.filter(item=task.item).count() == 2


def test_undo_works_on_the_latest_decisions_in_turn():
    project = ProjectFactory()
    first, second = _task(project), _task(project)
    reviewer = ReviewerFactory()
    _decide(first, reviewer, "1")
    _decide(second, reviewer, "2")
    assert queues.decision_undo(project=project, reviewer=reviewer) == second
    assert queues.decision_undo(project=project, reviewer=reviewer) == first
    assert Outcome.objects.count() == 0


def test_undo_is_refused_after_the_window():
    project = ProjectFactory()
    task = _task(project)
    reviewer = ReviewerFactory()
    decision = _decide(task, reviewer, "1")
    Decision.objects.filter(pk=decision.pk).update(
        created_at=timezone.now() - queues.UNDO_WINDOW - timedelta(seconds=1)
    )
    with pytest.raises(queues.DecisionRefused, match="Nothing to undo"):
        queues.decision_undo(project=project, reviewer=reviewer)
    assert Outcome.objects.get(item=task.item).label == "1"


def test_undo_is_refused_once_a_training_run_uses_the_outcome():
    project = ProjectFactory()
    task = _task(project)
    reviewer = ReviewerFactory()
    _decide(task, reviewer, "1")
    TrainingRun.objects.create(project=project, trigger="manual", snapshot=[[task.item_id, "1"]])
    with pytest.raises(queues.ValidationError, match="training run already uses"):
        queues.decision_undo(project=project, reviewer=reviewer)
    assert Outcome.objects.filter(item=task.item).exists()


def test_double_review_goes_blind_to_another_reviewer_and_disagreement_to_adjudication():
    project = ProjectFactory(double_review_rate=1.0)
    task = _task(project)
    alice, bob, admin = ReviewerFactory(), ReviewerFactory(), RolloutAdminFactory()
    _decide(task, alice, "4")
    second = ReviewTask.objects.get(item=task.item, reason=ReviewReason.DOUBLE_REVIEW)
    assert claim.task_claim_next(project=project, reviewer=alice) is None  # not to Alice
    assert claim.task_claim_next(project=project, reviewer=bob) == second
    _decide(second, bob, "9")
    adjudication = ReviewTask.objects.get(item=task.item, reason=ReviewReason.ADJUDICATION)
    assert adjudication.priority > second.priority
    # Reviewers never see adjudications; a rollout admin settles the label.
    assert claim.task_claim_next(project=project, reviewer=ReviewerFactory()) is None
    assert claim.task_claim_next(project=project, reviewer=admin) == adjudication
    final = queues.decision_submit(
        task=adjudication, reviewer=admin, verdict=Verdict.CORRECT, label="9"
    )
    outcome = Outcome.objects.get(item=task.item)
    assert (outcome.label, outcome.decision) == ("9", final)


def test_agreeing_second_review_closes_without_adjudication():
    project = ProjectFactory(double_review_rate=1.0)
    task = _task(project)
    alice, bob = ReviewerFactory(), ReviewerFactory()
    _decide(task, alice, "4")
    second = claim.task_claim_next(project=project, reviewer=bob)
    _decide(second, bob, "4")
    assert not ReviewTask.objects.filter(reason=ReviewReason.ADJUDICATION).exists()


def test_double_review_sample_is_deterministic_and_near_its_rate():
    project = ProjectFactory(double_review_rate=0.25)
    reviewer = ReviewerFactory()
    tasks = [_task(project) for _ in range(200)]
    for task in tasks:
        _decide(task, reviewer, "1")
    sampled = ReviewTask.objects.filter(reason=ReviewReason.DOUBLE_REVIEW).count()
    assert 30 <= sampled <= 70  # 25% of 200 = 50, binomial sd ~6


def test_lease_renewal_extends_only_my_claims():
    project = ProjectFactory()
    mine, theirs = _task(project), _task(project)
    alice, bob = ReviewerFactory(), ReviewerFactory()
    claim.task_claim_next(project=project, reviewer=alice)
    claim.task_claim_next(project=project, reviewer=bob)
    soon = timezone.now() + timedelta(seconds=5)
    ReviewTask.objects.update(lease_expires_at=soon)
    renewed = claim.task_lease_renew(project=project, reviewer=alice, task_ids=[mine.pk, theirs.pk])
    assert renewed == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.lease_expires_at > soon + timedelta(seconds=60)
    assert theirs.lease_expires_at == soon


def test_reviewer_agreement_counts_gold_items_and_second_reviews():
    project = ProjectFactory(double_review_rate=0.0)
    alice, bob = ReviewerFactory(), ReviewerFactory()
    gold = _task(project, is_gold=True, base_label="5")
    _decide(gold, alice, "5")
    shared = _task(project)
    _decide(shared, bob, "2")
    extra = ReviewTask.objects.create(
        project=project, item=shared.item, reason=ReviewReason.DOUBLE_REVIEW, priority=10
    )
    _decide(extra, alice, "7")
    stats = selectors.reviewer_stats(project=project, reviewer=alice)
    assert stats["today"] == 2 and stats["last_hour"] == 2
    assert stats["compared_today"] == 2 and stats["agreement_today"] == 0.5


def test_admin_relabel_is_recorded_as_a_decision():
    from reviewapp.review import quality as review_quality

    project = ProjectFactory()
    admin = RolloutAdminFactory()
    base_item = ItemFactory(project=project, origin="base", base_label="4")
    outcome = review_quality.outcome_relabel(item=base_item, label="9", actor=admin)
    assert (outcome.label, outcome.decided_by) == ("9", "human")
    assert outcome.decision.reviewer == admin and outcome.decision.suggested_label == "4"

    task = _task(project)
    _decide(task, ReviewerFactory(), "2")
    relabeled = review_quality.outcome_relabel(item=task.item, label="3", actor=admin)
    assert relabeled.label == "3"
    history = Decision.objects.filter(item=task.item).order_by("created_at")
    assert [d.label for d in history] == ["2", "3"]  # nothing erased
    with pytest.raises(queues.ValidationError, match="not a label"):
        review_quality.outcome_relabel(item=task.item, label="cat", actor=admin)
    assert Outcome.objects.get(item=task.item).label == "3"
