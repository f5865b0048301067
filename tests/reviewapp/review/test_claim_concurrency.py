"""Many reviewers claiming at once: no task is handed to two of them.

Each reviewer is a thread with its own database connection, so the claims really race in the
database (SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, a conditional UPDATE elsewhere).
"""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from reviewapp.models import Decision, Outcome, ReviewReason, ReviewTask, TaskStatus, Verdict
from reviewapp.review import claim
from reviewapp.review import services as queues
from tests.factories import ItemFactory, ProjectFactory, ReviewerFactory

pytestmark = pytest.mark.django_db(transaction=True)

REVIEWERS = 8
TASKS = 120


def _reviewer_loop(project, reviewer, claimed: list, errors: list, barrier) -> None:
    try:
        barrier.wait()
        while (task := claim.task_claim_next(project=project, reviewer=reviewer)) is not None:
            claimed.append((task.pk, reviewer.pk))
            queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label="1")
    except Exception as exc:  # noqa: BLE001 - reported by the test below
        errors.append(repr(exc))
    finally:
        connection.close()


def test_concurrent_reviewers_never_share_a_task():
    project = ProjectFactory()
    for _ in range(TASKS):
        item = ItemFactory(project=project)
        ReviewTask.objects.create(project=project, item=item, reason=ReviewReason.SHADOW)
    reviewers = [ReviewerFactory() for _ in range(REVIEWERS)]
    claimed, errors = [], []
    barrier = threading.Barrier(REVIEWERS)
    threads = [
        threading.Thread(target=_reviewer_loop, args=(project, r, claimed, errors, barrier))
        for r in reviewers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    print(f"{connection.vendor}: {len(claimed)} claims by {REVIEWERS} reviewers")
    assert errors == []
    per_task = Counter(task_id for task_id, _ in claimed)
    assert len(per_task) == TASKS and max(per_task.values()) == 1
    assert Decision.objects.count() == TASKS and Outcome.objects.count() == TASKS
    assert not ReviewTask.objects.exclude(status=TaskStatus.DONE).exists()
    assert len({reviewer for _, reviewer in claimed}) > 1  # the work was really shared


def test_expired_lease_comes_back_under_contention():
    project = ProjectFactory()
    item = ItemFactory(project=project)
    task = ReviewTask.objects.create(project=project, item=item, reason=ReviewReason.SHADOW)
    gone = ReviewerFactory()
    assert claim.task_claim_next(project=project, reviewer=gone) == task
    ReviewTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    winners, errors = [], []
    barrier = threading.Barrier(6)

    def grab(reviewer):
        try:
            barrier.wait()
            got = claim.task_claim_next(project=project, reviewer=reviewer)
            if got is not None:
                winners.append(reviewer.pk)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
        finally:
            connection.close()

    reviewers = [ReviewerFactory() for _ in range(6)]
    threads = [threading.Thread(target=grab, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(winners) == 1
    task.refresh_from_db()
    assert task.claimed_by_id == winners[0]
