"""The claim: which task a reviewer gets next, once as one PostgreSQL statement, once as ORM.

Both paths hold the same rule, side by side in this module: the reviewer's own live claim that
the desk does not show yet comes first, else the highest-priority, oldest open task (or one
whose lease ran out) that the reviewer did not skip, not a second review of an item they decided
nor a gold item they answered before (they would remember its label), and no adjudication unless
they may adjudicate. Within a priority the project's ``review_order``
decides: "informative" serves unscored tasks (random samples, alerts) oldest first, then stage
work most informative first (reviewapp.review.ordering); "fifo" serves oldest first.
PostgreSQL runs ``CLAIM`` or ``CLAIM_INFORMATIVE`` (row locks, SKIP LOCKED, the payload in the
same statement); SQLite, which has no row locks, runs the ORM twin
(``claimable`` + a conditional update). tests/reviewapp/review/test_claim_rule.py checks on
PostgreSQL that the two pick the same task in every case the rule distinguishes. The desk
decides and claims on every keystroke; building these with the ORM cost more CPU than
PostgreSQL spends running them (bench/review_cost.py measures both). The decision's task lock
(``task_lock``) is here too: the queue's hand-written SQL lives in this one module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from reviewapp.fastpaths import rows as sql_rows
from reviewapp.models import (
    Decision,
    Project,
    ReviewOrder,
    ReviewReason,
    ReviewTask,
    TaskStatus,
    Verdict,
)
from reviewapp.review import ordering
from reviewapp.review import quality as review_quality

# What the desk shows of a task (selectors.task_payload_from_row): {tasks} is a table or a WITH
# query with the task's id, reason, item_id and prediction_id.
_PAYLOAD_FROM = """
SELECT t.id, t.reason, i.id, i.width, i.height, p.label, p.confidence, p.probabilities, p.is_ood,
       i.kind, i.image_format, i.clip, p.frames, t.detail
FROM {tasks} t JOIN reviewapp_item i ON i.id = t.item_id
LEFT JOIN reviewapp_prediction p ON p.id = t.prediction_id
"""
PAYLOAD = _PAYLOAD_FROM.format(tasks="reviewapp_reviewtask") + "WHERE t.id = %s"


# The claim on PostgreSQL in one statement: the reviewer's own live claim that the desk does not
# show yet (``mine``), else lock and claim the next claimable task. A concurrent claimer skips the
# row this statement has locked, so no task goes out twice. The conditions are those of
# held_by() and claimable() (the SQLite path; the tests run both backends). The
# scan follows the partial index task_claim_order, so no claim sorts the project's open tasks.
# The row returned is the claimed task's PAYLOAD, so the desk needs no further statement.
# OFFSET 0 keeps each decision check a probe of the candidate row's own decisions (the task_id
# and item_id indexes), made only for the few rows the scan looks at. Without it PostgreSQL
# turned them into an anti-join and a hashed subplan over the reviewer's decisions, read by a
# sequential scan of the whole decision table on every claim: ~1 ms of PostgreSQL CPU per claim
# at 3,000 decisions, and growing with every decision ever made (tests/reviewapp/
# test_claim_plan.py). The statuses, verdict and reasons are written into the text, not bound:
# the plan PostgreSQL keeps for the prepared statement can then use task_claim_order, whose
# predicate (status open or claimed) a bound status would not prove; the claim is planned once
# per connection instead of on every call. {order} is the project's review order, each with its
# own partial index: task_claim_order (fifo) or task_claim_informative (informative).
_CLAIM_WITH = """
WITH mine AS (
    SELECT t.id, t.reason, t.item_id, t.prediction_id, t.detail FROM reviewapp_reviewtask t
    WHERE t.project_id = %(project)s AND t.status = {claimed}
      AND t.claimed_by_id = %(reviewer)s AND t.lease_expires_at >= %(now)s
      AND NOT (t.id = ANY(%(holding)s))
    ORDER BY t.priority DESC, t.created_at LIMIT 1
), claimed AS (
    UPDATE reviewapp_reviewtask
    SET status = {claimed}, claimed_by_id = %(reviewer)s, lease_expires_at = %(lease)s
    WHERE id = (
        SELECT t.id FROM reviewapp_reviewtask t
        WHERE t.project_id = %(project)s AND t.status IN ({open}, {claimed})
          AND (t.status = {open} OR t.lease_expires_at < %(now)s)
          AND NOT EXISTS (
              SELECT 1 FROM reviewapp_decision d
              WHERE d.task_id = t.id AND d.reviewer_id = %(reviewer)s
                AND d.undone_at IS NULL AND d.verdict = {skip}
              OFFSET 0)
          AND NOT ((t.reason = {double_review} OR t.gold_check) AND EXISTS (
              SELECT 1 FROM reviewapp_decision d
              WHERE d.item_id = t.item_id AND d.reviewer_id = %(reviewer)s
                AND d.undone_at IS NULL
              OFFSET 0))
          AND (%(may_adjudicate)s OR t.reason <> {adjudication})
        ORDER BY {order}
        LIMIT 1
        FOR UPDATE OF t SKIP LOCKED
    ) AND NOT EXISTS (SELECT 1 FROM mine)
    RETURNING id, reason, item_id, prediction_id, detail
), chosen AS (
    SELECT * FROM mine UNION ALL SELECT * FROM claimed
)"""


def _literal(value: str) -> str:
    """A code constant (an enum value) as an SQL string literal."""
    if not re.fullmatch(r"[a-z_]+", value):
        raise ValueError(f"not a plain constant: {value!r}")
    return f"'{value}'"


_FIFO_ORDER = "t.priority DESC, t.created_at, t.id"
# DESC NULLS FIRST is PostgreSQL's DESC: the index's order, so the scan stays on it.
_INFORMATIVE_ORDER = "t.priority DESC, t.informativeness DESC NULLS FIRST, t.created_at, t.id"


def _claim_sql(order: str) -> str:
    return _CLAIM_WITH.format(
        open=_literal(TaskStatus.OPEN),
        claimed=_literal(TaskStatus.CLAIMED),
        skip=_literal(Verdict.SKIP),
        double_review=_literal(ReviewReason.DOUBLE_REVIEW),
        adjudication=_literal(ReviewReason.ADJUDICATION),
        order=order,
    ) + _PAYLOAD_FROM.format(tasks="chosen")


CLAIM = _claim_sql(_FIFO_ORDER)  # review_order "fifo"
CLAIM_INFORMATIVE = _claim_sql(_INFORMATIVE_ORDER)  # review_order "informative"


def claim_statement(project: Project) -> str:
    """The claim statement for the project's review order."""
    return CLAIM if project.review_order == ReviewOrder.FIFO else CLAIM_INFORMATIVE


# A task with its prediction's label (``suggested``) and model version (``suggested_by``).
# {task_columns}: the task's columns in field order (reviewapp.sql_rows).
TASK = """
SELECT {task_columns}, p.label AS suggested, p.model_version_id AS suggested_by
FROM reviewapp_reviewtask t LEFT JOIN reviewapp_prediction p ON p.id = t.prediction_id
WHERE t.id = %s AND t.project_id = %s
"""
TASK_FOR_UPDATE = TASK + "FOR UPDATE OF t"  # SQLite has no row locks: it writes one at a time


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.HANDOFF_REVIEW_LEASE_SECONDS)


def claimable(*, project: Project, reviewer) -> QuerySet[ReviewTask]:
    now = timezone.now()
    # Correlated EXISTS probes (indexed on task / item) stay cheap however many decisions the
    # reviewer has made; IN (subquery) over all their decisions did not.
    my_decisions = Decision.objects.filter(reviewer=reviewer, undone_at__isnull=True)
    skipped = Exists(my_decisions.filter(task_id=OuterRef("pk"), verdict=Verdict.SKIP))
    decided_item = Exists(my_decisions.filter(item_id=OuterRef("item_id")))
    tasks = (
        ReviewTask.objects.filter(project=project, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED])
        .filter(Q(status=TaskStatus.OPEN) | Q(status=TaskStatus.CLAIMED, lease_expires_at__lt=now))
        .exclude(skipped)
        # A second review must come from somebody else than the first; a gold item too.
        .exclude((Q(reason=ReviewReason.DOUBLE_REVIEW) | Q(gold_check=True)) & decided_item)
    )
    if not review_quality.may_adjudicate(reviewer):
        tasks = tasks.exclude(reason=ReviewReason.ADJUDICATION)
    return tasks.order_by(*ordering.claim_order(project))


def held_by(*, project: Project, reviewer, holding: list[int]) -> QuerySet[ReviewTask]:
    """The reviewer's live claims in this project that the desk does not show yet."""
    return (
        ReviewTask.objects.filter(
            project=project,
            status=TaskStatus.CLAIMED,
            claimed_by=reviewer,
            lease_expires_at__gte=timezone.now(),
        )
        .exclude(pk__in=holding)
        .order_by("-priority", "created_at")
    )


def task_claim_next(
    *, project: Project, reviewer, holding: Iterable[int] = ()
) -> ReviewTask | None:
    """Give the reviewer a task they hold (not in ``holding``), or claim the next one."""
    with transaction.atomic(savepoint=False):
        task_id = claim_id(project=project, reviewer=reviewer, holding=holding)
    return _task_for_desk(task_id)


def _task_for_desk(task_id: int | None) -> ReviewTask | None:
    if task_id is None:
        return None
    return ReviewTask.objects.select_related("item", "prediction").get(pk=task_id)


def claim_id(*, project: Project, reviewer, holding: Iterable[int]) -> int | None:
    """Caller holds a transaction: the id of a task held or newly claimed by the reviewer."""
    if connection.vendor == "postgresql":
        row = claim_skip_locked(project=project, reviewer=reviewer, holding=holding)
        return None if row is None else row[0]
    holding = [int(pk) for pk in holding]
    mine = held_by(project=project, reviewer=reviewer, holding=holding)
    held = mine.values_list("pk", flat=True).first()
    if held is not None:
        return held
    return claim_conditional(project=project, reviewer=reviewer)


def claim_payload_row(*, project: Project, reviewer, holding: Iterable[int]) -> tuple | None:
    """Caller holds a transaction: claim as claim_id() does and return what the desk shows of
    the task (PAYLOAD's row), or None when there is nothing to claim."""
    if connection.vendor == "postgresql":
        return claim_skip_locked(project=project, reviewer=reviewer, holding=holding)
    task_id = claim_id(project=project, reviewer=reviewer, holding=holding)
    if task_id is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(PAYLOAD, [task_id])
        return cursor.fetchone()


def claim_skip_locked(*, project: Project, reviewer, holding: Iterable[int]) -> tuple | None:
    """PostgreSQL: one statement, see CLAIM; the claimed task's payload row."""
    now = timezone.now()
    params = {
        "project": project.pk,
        "reviewer": reviewer.pk,
        "now": now,
        "lease": now + lease_duration(),
        "holding": [int(pk) for pk in holding],
        "may_adjudicate": review_quality.may_adjudicate(reviewer),
    }
    with connection.cursor() as cursor:
        cursor.execute(claim_statement(project), params)
        return cursor.fetchone()


def claim_conditional(*, project: Project, reviewer, attempts: int = 20) -> int | None:
    for _ in range(attempts):
        candidate = claimable(project=project, reviewer=reviewer).values_list("pk", flat=True)
        candidate = candidate.first()
        if candidate is None:
            return None
        now = timezone.now()
        won = (
            ReviewTask.objects.filter(pk=candidate)
            .filter(
                Q(status=TaskStatus.OPEN) | Q(status=TaskStatus.CLAIMED, lease_expires_at__lt=now)
            )
            .update(
                status=TaskStatus.CLAIMED,
                claimed_by=reviewer,
                lease_expires_at=now + lease_duration(),
            )
        )
        if won:
            return candidate
    return None


def task_lease_renew(*, project: Project, reviewer, task_ids: Iterable[int]) -> int:
    """Extend the reviewer's leases on tasks still theirs; returns how many were renewed."""
    task_ids = [int(pk) for pk in task_ids]
    if not task_ids:  # an idle desk's heartbeat: the ORM would build the query to learn this
        return 0
    return ReviewTask.objects.filter(
        project=project,
        pk__in=task_ids,
        status=TaskStatus.CLAIMED,
        claimed_by=reviewer,
    ).update(lease_expires_at=timezone.now() + lease_duration())


def task_lock(*, project: Project, task_id: int) -> ReviewTask | None:
    """Lock the task's row for a decision, with its prediction's label (``suggested``) and
    model version. Plain SQL: the ORM's select_related join cost four times as much CPU as the
    statement. Caller holds the transaction."""
    sql = task_sql(connection.features.has_select_for_update_of)
    with connection.cursor() as cursor:
        cursor.execute(sql, [task_id, project.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    task = sql_rows.instance(ReviewTask, row)
    task.suggested, task.suggested_by = row[-2:]
    task.project = project
    return task


@functools.cache
def task_sql(lock: bool) -> str:
    sql = TASK_FOR_UPDATE if lock else TASK
    return sql.format(task_columns=sql_rows.columns(ReviewTask, "t"))
