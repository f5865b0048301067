"""Claiming and deciding: leases, blind review, label checks, nothing decided twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.models import (
    Decision,
    Outcome,
    ReviewReason,
    ReviewTask,
    Stage,
    TaskStatus,
    Verdict,
)
from reviewapp.review import claim
from reviewapp.review import services as queues
from tests.factories import (
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
)

pytestmark = pytest.mark.django_db


def _task(project, *, label="3", reason=ReviewReason.SHADOW, priority=20):
    prediction = PredictionFactory(item__project=project, label=label)
    return ReviewTaskFactory(prediction=prediction, reason=reason, priority=priority)


def test_claims_highest_priority_then_oldest_and_never_hands_a_task_twice():
    project = ProjectFactory()
    old = _task(project)
    _task(project)
    urgent = _task(project, reason=ReviewReason.PRIORITY, priority=100)
    alice, bob, carol = ReviewerFactory(), ReviewerFactory(), ReviewerFactory()
    assert claim.task_claim_next(project=project, reviewer=alice) == urgent
    assert claim.task_claim_next(project=project, reviewer=bob) == old
    third = claim.task_claim_next(project=project, reviewer=carol)
    assert third not in (urgent, old)
    assert claim.task_claim_next(project=project, reviewer=ReviewerFactory()) is None
    # Asking again returns the reviewer's own claim instead of a new one.
    assert claim.task_claim_next(project=project, reviewer=alice) == urgent


def test_expired_lease_returns_the_task_to_the_queue():
    project = ProjectFactory()
    task = _task(project)
    alice, bob = ReviewerFactory(), ReviewerFactory()
    assert claim.task_claim_next(project=project, reviewer=alice) == task
    assert claim.task_claim_next(project=project, reviewer=bob) is None
    ReviewTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert claim.task_claim_next(project=project, reviewer=bob) == task


def test_decision_on_a_lost_lease_is_refused_and_changes_nothing():
    project = ProjectFactory()
    task = _task(project)
    alice, bob = ReviewerFactory(), ReviewerFactory()
    claim.task_claim_next(project=project, reviewer=alice)
    ReviewTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    claim.task_claim_next(project=project, reviewer=bob)
    with pytest.raises(queues.DecisionRefused, match="another reviewer has it now"):
        queues.decision_submit(task=task, reviewer=alice, verdict=Verdict.CORRECT, label="3")
    assert not Decision.objects.exists() and not Outcome.objects.exists()
    queues.decision_submit(task=task, reviewer=bob, verdict=Verdict.CORRECT, label="3")
    assert Outcome.objects.get().label == "3"


def test_expired_lease_that_nobody_took_still_accepts_the_decision():
    project = ProjectFactory()
    task = _task(project)
    alice = ReviewerFactory()
    claim.task_claim_next(project=project, reviewer=alice)
    ReviewTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    queues.decision_submit(task=task, reviewer=alice, verdict=Verdict.CORRECT, label="5")
    assert Outcome.objects.get(item=task.item).label == "5"


def test_label_outside_the_label_set_is_refused():
    project = ProjectFactory()
    task = _task(project)
    reviewer = ReviewerFactory()
    claim.task_claim_next(project=project, reviewer=reviewer)
    with pytest.raises(queues.DecisionRefused, match="'cat' is not a label"):
        queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label="cat")
    task.refresh_from_db()
    assert task.status == TaskStatus.CLAIMED
    assert not Decision.objects.exists() and not Outcome.objects.exists()


def test_shadow_stage_is_blind_confirm_is_refused_and_agreement_is_recorded():
    project = ProjectFactory(stage=Stage.SHADOW)
    task = _task(project, label="7")
    reviewer = ReviewerFactory()
    with pytest.raises(queues.DecisionRefused, match="no visible suggestion"):
        queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CONFIRM)
    decision = queues.decision_submit(
        task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label="7"
    )
    assert decision.verdict == Verdict.CONFIRM  # the blind pick agreed with the model
    assert decision.suggestion_shown is False
    assert decision.suggested_label == "7"


def test_supervised_confirm_takes_the_suggestion():
    project = ProjectFactory(stage=Stage.SUPERVISED)
    task = _task(project, label="4", reason=ReviewReason.SUPERVISED)
    reviewer = ReviewerFactory()
    decision = queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CONFIRM)
    assert decision.suggestion_shown
    outcome = Outcome.objects.get(item=task.item)
    assert (outcome.label, outcome.decided_by, outcome.decision) == ("4", "human", decision)


def test_out_of_domain_and_skip():
    project = ProjectFactory()
    ood_task, skip_task = _task(project), _task(project)
    reviewer = ReviewerFactory()
    queues.decision_submit(task=ood_task, reviewer=reviewer, verdict=Verdict.OUT_OF_DOMAIN)
    outcome = Outcome.objects.get(item=ood_task.item)
    assert outcome.is_out_of_domain and outcome.label == ""
    queues.decision_submit(task=skip_task, reviewer=reviewer, verdict=Verdict.SKIP)
    skip_task.refresh_from_db()
    assert skip_task.status == TaskStatus.OPEN
    assert not Outcome.objects.filter(item=skip_task.item).exists()
    # The skipped task goes to somebody else, not back to the same reviewer.
    assert claim.task_claim_next(project=project, reviewer=reviewer) is None
    assert claim.task_claim_next(project=project, reviewer=ReviewerFactory()) == skip_task


def test_a_decided_task_cannot_be_decided_again():
    project = ProjectFactory()
    task = _task(project)
    reviewer = ReviewerFactory()
    queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label="1")
    with pytest.raises(queues.DecisionRefused, match="already decided"):
        queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label="2")
    assert Outcome.objects.get(item=task.item).label == "1"
    assert Decision.objects.count() == 1
