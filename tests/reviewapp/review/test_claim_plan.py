"""The claim statement on PostgreSQL stays cheap as decisions pile up, and is planned once.

A claim runs on every decision of every reviewer. Its decision checks must probe the candidate
task's own decisions by index, not scan the decision table (which grows with every decision
ever made), and PostgreSQL must keep one plan for the prepared statement instead of planning
it again on every call (see the comment on reviewapp.claim.CLAIM).
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from reviewapp.models import Decision, Item, ReviewReason, ReviewTask, TaskStatus, Verdict
from reviewapp.review import claim
from tests.factories import ProjectFactory, ReviewerFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's claim statement"),
]


def _tasks(project, n, *, reason=ReviewReason.SHADOW):
    items = Item.objects.bulk_create(
        Item(
            project=project,
            sha256=f"{project.pk}-{reason}-{i}".rjust(64, "0"),
            key=f"{project.pk}-{reason}-{i}",
            image=f"items/plan/{i}.png",
            width=32,
            height=32,
            origin="simulation",
        )
        for i in range(n)
    )
    return ReviewTask.objects.bulk_create(
        ReviewTask(project=project, item=item, reason=reason, priority=20) for item in items
    )


def _history(reviewer, decisions_per_task=10, tasks=300):
    """Another project's past: many decided tasks with many decisions each."""
    project = ProjectFactory()
    done = _tasks(project, tasks)
    ReviewTask.objects.filter(pk__in=[t.pk for t in done]).update(status=TaskStatus.DONE)
    Decision.objects.bulk_create(
        Decision(task=t, item_id=t.item_id, reviewer=reviewer, verdict=Verdict.CORRECT, label="1")
        for t in done
        for _ in range(decisions_per_task)
    )


def _claim_params(project, reviewer, holding=()):
    now = timezone.now()
    return {
        "project": project.pk,
        "reviewer": reviewer.pk,
        "now": now,
        "lease": now + timedelta(minutes=5),
        "holding": list(holding),
        "may_adjudicate": False,
    }


def test_the_claims_decision_checks_probe_by_index_however_many_decisions_exist():
    reviewer = ReviewerFactory()
    _history(reviewer)
    project = ProjectFactory()
    # Enough open tasks that a sorted scan beats a bitmap scan of the informative order's index
    # (same predicate) plus a sort, as it does in any real queue.
    _tasks(project, 300)
    _tasks(project, 5, reason=ReviewReason.DOUBLE_REVIEW)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reviewapp_decision")
        cursor.execute("ANALYZE reviewapp_reviewtask")
        cursor.execute("EXPLAIN " + claim.CLAIM, _claim_params(project, reviewer))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Anti Join" not in plan and "hashed SubPlan" not in plan, plan
    assert "Seq Scan on reviewapp_decision" not in plan, plan
    assert "Index Scan using reviewapp_decision_task_id" in plan, plan
    assert "task_claim_order" in plan, plan


def test_the_informative_claim_scans_its_own_index():
    """review_order "informative" orders by informativeness: the scan follows
    task_claim_informative (unscored first, as PostgreSQL's DESC puts nulls), with no sort."""
    reviewer = ReviewerFactory()
    _history(reviewer, decisions_per_task=2, tasks=50)
    project = ProjectFactory()
    tasks = _tasks(project, 300, reason=ReviewReason.SUPERVISED)
    for n, task in enumerate(tasks):
        task.informativeness = None if n % 10 == 0 else (n % 17) / 10
    ReviewTask.objects.bulk_update(tasks, ["informativeness"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reviewapp_reviewtask")
        cursor.execute("EXPLAIN " + claim.CLAIM_INFORMATIVE, _claim_params(project, reviewer))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "task_claim_informative" in plan, plan
    assert "Sort" not in plan, plan


def test_the_claim_keeps_one_plan_for_its_prepared_statement():
    reviewer = ReviewerFactory()
    _history(reviewer)
    project = ProjectFactory()
    _tasks(project, 500)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reviewapp_decision")
        cursor.execute("ANALYZE reviewapp_reviewtask")
    claimed = []
    # psycopg prepares a statement on its 5th run (DB_PREPARE_THRESHOLD); PostgreSQL plans the
    # first 5 executions of a prepared statement for their values, then picks its plan.
    for _ in range(20):
        with transaction.atomic():
            row = claim.claim_payload_row(project=project, reviewer=reviewer, holding=claimed)
        claimed.append(row[0])
    assert len(set(claimed)) == 20
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%WITH mine AS%"],
        )
        generic, custom = cursor.fetchone()
    assert generic >= 1, (generic, custom)  # planned once, reused: no planning per claim
