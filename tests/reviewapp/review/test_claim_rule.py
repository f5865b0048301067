"""The claim rule exists twice, as PostgreSQL's one statement and as its ORM twin (the SQLite
path), side by side in reviewapp.review.claim: on random queues both pick the same task."""

import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from reviewapp.models import Decision, ReviewOrder, ReviewReason, TaskStatus, Verdict
from reviewapp.review import claim, ordering
from tests.factories import (
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

REASONS = [
    ReviewReason.SHADOW,
    ReviewReason.SUPERVISED,
    ReviewReason.LOW_CONFIDENCE,
    ReviewReason.AUDIT,
    ReviewReason.PRIORITY,
    ReviewReason.DOUBLE_REVIEW,
    ReviewReason.ADJUDICATION,
]


def _sql_choice(*, project, reviewer, holding) -> int | None:
    """What the PostgreSQL statement would claim, rolled back so nothing changes."""
    with transaction.atomic():
        savepoint = transaction.savepoint()
        row = claim.claim_skip_locked(project=project, reviewer=reviewer, holding=holding)
        transaction.savepoint_rollback(savepoint)
    return None if row is None else row[0]


def _orm_choice(*, project, reviewer, holding) -> int | None:
    """What the ORM twin picks: a held task the desk does not show, else the next claimable."""
    held = claim.held_by(project=project, reviewer=reviewer, holding=list(holding))
    first = held.values_list("pk", flat=True).first()
    if first is not None:
        return first
    return claim.claimable(project=project, reviewer=reviewer).values_list("pk", flat=True).first()


def _random_queue(rng: random.Random, project, reviewers) -> list:
    now = timezone.now()
    tasks = []
    for n in range(24):
        reason = rng.choice(REASONS)
        status = rng.choice([TaskStatus.OPEN, TaskStatus.OPEN, TaskStatus.CLAIMED])
        lease = now + timedelta(seconds=rng.choice([-60, 300]))  # ran out, or still live
        task = ReviewTaskFactory(
            prediction__item__project=project,
            reason=reason,
            priority=rng.choice([10, 20, 20, 50]),
            status=status,
            claimed_by=rng.choice(reviewers) if status == TaskStatus.CLAIMED else None,
            lease_expires_at=lease if status == TaskStatus.CLAIMED else None,
            # Stage work is scored (ties included), the rest is not (reviewapp.review.ordering).
            informativeness=rng.choice([0.25, 0.8, 0.8, 1.6])
            if ordering.is_ordered(reason)
            else None,
        )
        task.created_at = now - timedelta(seconds=rng.randrange(10_000) + n)
        task.save(update_fields=["created_at"])
        reviewer = rng.choice(reviewers)
        if rng.random() < 0.2:  # this reviewer skipped it earlier
            Decision.objects.create(
                task=task, item=task.item, reviewer=reviewer, verdict=Verdict.SKIP
            )
        if reason == ReviewReason.DOUBLE_REVIEW and rng.random() < 0.5:  # they decided the item
            first = ReviewTaskFactory(
                prediction=task.prediction, reason=ReviewReason.SHADOW, status=TaskStatus.DONE
            )
            Decision.objects.create(
                task=first, item=task.item, reviewer=reviewer, verdict=Verdict.CORRECT, label="3"
            )
        tasks.append(task)
    return tasks


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL twin runs on PostgreSQL")
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("order", [ReviewOrder.INFORMATIVE, ReviewOrder.FIFO])
def test_the_sql_claim_and_its_orm_twin_pick_the_same_task(seed, order):
    rng = random.Random(seed)
    project = ProjectFactory(review_order=order)
    ProjectFactory()  # another project's queue must never leak in
    reviewers = [ReviewerFactory(), ReviewerFactory(), RolloutAdminFactory()]
    tasks = _random_queue(rng, project, reviewers)
    compared = 0
    for reviewer in reviewers:
        own = [t.pk for t in tasks if t.claimed_by_id == reviewer.pk]
        for holding in ([], own, own[:1]):
            sql = _sql_choice(project=project, reviewer=reviewer, holding=holding)
            orm = _orm_choice(project=project, reviewer=reviewer, holding=holding)
            assert sql == orm, (seed, reviewer.username, holding)
            compared += sql is not None
    assert compared  # the queues were not all empty: the comparison saw real choices


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL twin runs on PostgreSQL")
def test_the_comparison_notices_a_rule_that_differs():
    """An adjudication is claimable by an admin only: a reviewer's ORM query widened to include
    it disagrees with the statement, so the comparison above can fail."""
    project = ProjectFactory()
    reviewer = ReviewerFactory()
    task = ReviewTaskFactory(prediction__item__project=project, reason=ReviewReason.ADJUDICATION)
    assert _sql_choice(project=project, reviewer=reviewer, holding=[]) is None
    widened = claim.ReviewTask.objects.filter(project=project, status=TaskStatus.OPEN)
    assert widened.values_list("pk", flat=True).first() == task.pk
