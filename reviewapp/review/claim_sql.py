"""The review queue's hot statements as plain SQL (see reviewapp.queues).

The desk decides and claims on every keystroke; building and compiling these with the ORM cost
more CPU than PostgreSQL spends running them (bench/review_cost.py measures both).
"""

import re

from reviewapp.models import ReviewReason, TaskStatus, Verdict

# What the desk shows of a task (selectors.task_payload_from_row): {tasks} is a table or a WITH
# query with the task's id, reason, item_id and prediction_id.
_PAYLOAD_FROM = """
SELECT t.id, t.reason, i.id, i.width, i.height, p.label, p.confidence, p.probabilities, p.is_ood
FROM {tasks} t JOIN reviewapp_item i ON i.id = t.item_id
LEFT JOIN reviewapp_prediction p ON p.id = t.prediction_id
"""
PAYLOAD = _PAYLOAD_FROM.format(tasks="reviewapp_reviewtask") + "WHERE t.id = %s"


# The claim on PostgreSQL in one statement: the reviewer's own live claim that the desk does not
# show yet (``mine``), else lock and claim the next claimable task. A concurrent claimer skips the
# row this statement has locked, so no task goes out twice. The conditions are those of
# queues._held_by() and queues._claimable() (the SQLite path; the tests run both backends). The
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
# per connection instead of on every call.
_CLAIM_WITH = """
WITH mine AS (
    SELECT t.id, t.reason, t.item_id, t.prediction_id FROM reviewapp_reviewtask t
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
          AND NOT (t.reason = {double_review} AND EXISTS (
              SELECT 1 FROM reviewapp_decision d
              WHERE d.item_id = t.item_id AND d.reviewer_id = %(reviewer)s
                AND d.undone_at IS NULL
              OFFSET 0))
          AND (%(may_adjudicate)s OR t.reason <> {adjudication})
        ORDER BY t.priority DESC, t.created_at, t.id
        LIMIT 1
        FOR UPDATE OF t SKIP LOCKED
    ) AND NOT EXISTS (SELECT 1 FROM mine)
    RETURNING id, reason, item_id, prediction_id
), chosen AS (
    SELECT * FROM mine UNION ALL SELECT * FROM claimed
)"""


def _literal(value: str) -> str:
    """A code constant (an enum value) as an SQL string literal."""
    if not re.fullmatch(r"[a-z_]+", value):
        raise ValueError(f"not a plain constant: {value!r}")
    return f"'{value}'"


CLAIM = _CLAIM_WITH.format(
    open=_literal(TaskStatus.OPEN),
    claimed=_literal(TaskStatus.CLAIMED),
    skip=_literal(Verdict.SKIP),
    double_review=_literal(ReviewReason.DOUBLE_REVIEW),
    adjudication=_literal(ReviewReason.ADJUDICATION),
) + _PAYLOAD_FROM.format(tasks="chosen")


# A task with its prediction's label (``suggested``) and model version (``suggested_by``).
# {task_columns}: the task's columns in field order (reviewapp.sql_rows).
TASK = """
SELECT {task_columns}, p.label AS suggested, p.model_version_id AS suggested_by
FROM reviewapp_reviewtask t LEFT JOIN reviewapp_prediction p ON p.id = t.prediction_id
WHERE t.id = %s AND t.project_id = %s
"""
TASK_FOR_UPDATE = TASK + "FOR UPDATE OF t"  # SQLite has no row locks: it writes one at a time
