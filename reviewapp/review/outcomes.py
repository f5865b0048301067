"""The one writer of an item's final Outcome, and the one place its webhooks are fanned out.

Every new outcome (a reviewer's decision, the model's automatic decision, an admin's relabel of
an item that had none) is inserted by ``outcome_create``, which also schedules the webhook
deliveries for after the commit; no signal is needed to keep the two in step. A later human
verdict (an adjudication, an admin's relabel) revises it with ``outcome_revise``; an undone
decision takes its outcome away with ``outcome_withdraw``. A reviewer's first look that settles
an item goes through ``outcome_settle_first_look``: the decision, the outcome and the task closed
in one PostgreSQL statement, or the ORM twin (``outcome_create``) elsewhere. Nothing else writes
Outcome rows.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from reviewapp.fastpaths import bulk_copy
from reviewapp.models import DecidedBy, Outcome, ReviewReason, TaskStatus, Verdict
from reviewapp.review import alerts, webhooks

# A first look that settles the item, on PostgreSQL in one statement: the decision, the item's
# human outcome, the task closed. A second outcome for the item breaks the unique constraint on
# reviewapp_outcome.item_id and the statement writes nothing. The last column says whether any
# webhook is active (most often none: nothing to schedule). The desk runs it on every keystroke:
# the ORM's three statements cost more CPU to build than PostgreSQL spends running this one
# (bench/review_cost.py). Its ORM twin is ``_first_look_settle_orm``; tests/reviewapp/review/
# test_settle_rule.py checks that both write the same rows.
SETTLE = """
WITH decision AS (
    INSERT INTO reviewapp_decision (task_id, item_id, reviewer_id, verdict, label,
        suggested_label, suggestion_shown, duration_ms, created_at, undone_at)
    VALUES (%(task)s, %(item)s, %(reviewer)s, %(verdict)s, %(label)s, %(suggested)s, %(shown)s,
        %(duration)s, %(now)s, NULL)
    RETURNING id
), outcome AS (
    INSERT INTO reviewapp_outcome (item_id, label, is_out_of_domain, decided_by, decision_id,
        model_version_id, audit_probability, created_at)
    SELECT %(item)s, %(label)s, %(ood)s, %(human)s, decision.id, %(model_version)s,
        %(audit_probability)s, %(now)s
    FROM decision
    RETURNING id
), closed AS (
    UPDATE reviewapp_reviewtask SET status = %(done)s, closed_at = %(now)s WHERE id = %(task)s
)
SELECT decision.id, outcome.id,
    EXISTS (SELECT 1 FROM reviewapp_webhook WHERE is_active) AS any_webhook
FROM decision, outcome
"""


def outcome_create(
    *,
    item_id: int,
    label: str,
    decided_by: str,
    decision=None,
    model_version_id: int | None = None,
    audit_probability: float = 1.0,
    is_out_of_domain: bool = False,
) -> Outcome:
    """Insert the item's final outcome and send it to the webhooks after commit.

    Raises IntegrityError when the item already has an outcome (one per item, by constraint):
    the caller decides whether that is a redelivery or a refusal.
    """
    outcome = Outcome.objects.create(
        item_id=item_id,
        label=label,
        is_out_of_domain=is_out_of_domain,
        decided_by=decided_by,
        decision=decision,
        model_version_id=model_version_id,
        audit_probability=audit_probability,
    )
    webhooks.outcome_finalised_on_commit(outcome.pk)
    return outcome


def outcomes_create_bulk(rows: list[Outcome]) -> list[Outcome]:
    """Insert many new outcomes at once (the model's automatic decisions of one batch).

    One INSERT for the batch and one after-commit webhook fan-out for all of it. Raises
    IntegrityError when any item already has an outcome (nothing is written then): the caller
    falls back to ``outcome_create`` row by row.
    """
    if not rows:
        return []
    bulk_copy.copy_insert(rows)
    webhooks.outcomes_finalised_on_commit([row.pk for row in rows])
    return rows


def outcome_revise(
    *, outcome: Outcome, label: str, is_out_of_domain: bool, decision, decided_by: str | None = None
) -> Outcome:
    """A later human verdict replaces the outcome's label (caller holds the row's lock)."""
    outcome.label, outcome.is_out_of_domain, outcome.decision = label, is_out_of_domain, decision
    fields = ["label", "is_out_of_domain", "decision"]
    if decided_by is not None:
        outcome.decided_by = decided_by
        fields.append("decided_by")
    outcome.save(update_fields=fields)
    return outcome


def outcome_withdraw(*, decision) -> int:
    """Remove the outcome an undone decision created; returns how many rows went."""
    deleted, _ = Outcome.objects.filter(decision=decision).delete()
    return deleted


def outcome_settle_first_look(*, task, decision, use_sql: bool | None = None) -> None:
    """Write the decision, the item's human outcome and the task's closing; webhooks after commit.

    Raises IntegrityError when the item already has an outcome (nothing is written then). Caller
    holds the transaction and the task's row lock. ``use_sql`` defaults to PostgreSQL's one
    statement; tests pass False to run the ORM twin on PostgreSQL too.
    """
    if use_sql is None:
        use_sql = connection.vendor == "postgresql"
    if use_sql:
        _first_look_settle_sql(task=task, decision=decision)
    else:
        _first_look_settle_orm(task=task, decision=decision)
    if task.reason == ReviewReason.PRIORITY:  # only alerted items have priority tasks
        alerts.alert_decided(item_id=task.item_id, now=task.closed_at)


def _first_look_settle_orm(*, task, decision) -> None:
    decision.save(force_insert=True)
    outcome_create(
        item_id=task.item_id,
        label=decision.label,
        is_out_of_domain=decision.verdict == Verdict.OUT_OF_DOMAIN,
        decided_by=DecidedBy.HUMAN,
        decision=decision,
        model_version_id=task.suggested_by,
        audit_probability=task.audit_probability or 1.0,
    )
    task.status, task.closed_at = TaskStatus.DONE, timezone.now()
    task.save(update_fields=["status", "closed_at"])


def _first_look_settle_sql(*, task, decision) -> None:
    now = timezone.now()
    params = {
        "task": task.pk,
        "item": task.item_id,
        "reviewer": decision.reviewer_id,
        "verdict": decision.verdict,
        "label": decision.label,
        "suggested": decision.suggested_label,
        "shown": decision.suggestion_shown,
        "duration": decision.duration_ms,
        "now": now,
        "ood": decision.verdict == Verdict.OUT_OF_DOMAIN,
        "human": DecidedBy.HUMAN.value,
        "model_version": task.suggested_by,
        "audit_probability": task.audit_probability or 1.0,
        "done": TaskStatus.DONE.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(SETTLE, params)
        decision_id, outcome_id, any_webhook = cursor.fetchone()
    decision.pk, decision.created_at = decision_id, now
    decision._state.adding, decision._state.db = False, connection.alias
    task.status, task.closed_at = TaskStatus.DONE, now
    if any_webhook:  # the statement looked: most often there is none to schedule
        webhooks.outcome_finalised_on_commit(outcome_id)
