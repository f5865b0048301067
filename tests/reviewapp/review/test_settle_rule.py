"""A first look that settles an item is written once as one PostgreSQL statement and once by the
ORM (review.outcomes): both write the same decision, outcome and closed task."""

import pytest
from django.db import connection, transaction

from reviewapp.models import Decision, Outcome, ReviewTask, TaskStatus, Verdict
from reviewapp.review import claim, outcomes
from tests.factories import PredictionFactory, ProjectFactory, ReviewerFactory, ReviewTaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

DECISION_FIELDS = ("task_id", "item_id", "reviewer_id", "verdict", "label", "suggested_label")
DECISION_FIELDS += ("suggestion_shown", "duration_ms", "undone_at")
OUTCOME_FIELDS = ("label", "is_out_of_domain", "decided_by", "model_version_id")
OUTCOME_FIELDS += ("audit_probability",)


def _settled(*, project, reviewer, verdict, label, use_sql):
    task = ReviewTaskFactory(
        prediction=PredictionFactory(item__project=project, label="3", confidence=0.9),
        audit_probability=0.25,
    )
    with transaction.atomic():
        locked = claim.task_lock(project=project, task_id=task.pk)
        decision = Decision(
            task=locked,
            item_id=locked.item_id,
            reviewer=reviewer,
            verdict=verdict,
            label=label,
            suggested_label=locked.suggested or "",
            suggestion_shown=True,
            duration_ms=1234,
        )
        outcomes.outcome_settle_first_look(task=locked, decision=decision, use_sql=use_sql)
    stored = Decision.objects.get(task_id=task.pk)
    assert decision.pk == stored.pk  # the caller's object is the stored row either way
    outcome = Outcome.objects.get(item_id=task.item_id)
    closed = ReviewTask.objects.get(pk=task.pk)
    return (
        tuple(getattr(stored, f) for f in DECISION_FIELDS if f not in ("task_id", "item_id")),
        tuple(getattr(outcome, f) for f in OUTCOME_FIELDS if f != "model_version_id"),
        outcome.decision_id == stored.pk and outcome.model_version_id is not None,
        closed.status,
        closed.closed_at is not None,
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL twin runs on PostgreSQL")
@pytest.mark.parametrize(
    ("verdict", "label"),
    [(Verdict.CONFIRM, "3"), (Verdict.CORRECT, "7"), (Verdict.OUT_OF_DOMAIN, "")],
)
def test_the_settle_statement_and_its_orm_twin_write_the_same_rows(verdict, label):
    project = ProjectFactory()
    reviewer = ReviewerFactory()
    by_sql = _settled(
        project=project, reviewer=reviewer, verdict=verdict, label=label, use_sql=True
    )
    by_orm = _settled(
        project=project, reviewer=reviewer, verdict=verdict, label=label, use_sql=False
    )
    assert by_sql == by_orm
    assert by_sql[3] == TaskStatus.DONE and by_sql[2] and by_sql[4]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL twin runs on PostgreSQL")
@pytest.mark.parametrize("use_sql", [True, False])
def test_a_second_outcome_is_refused_by_both_and_writes_nothing(use_sql):
    from django.db import IntegrityError

    project = ProjectFactory()
    task = ReviewTaskFactory(prediction=PredictionFactory(item__project=project))
    Outcome.objects.create(item_id=task.item_id, label="1", decided_by="model")
    with pytest.raises(IntegrityError), transaction.atomic():
        locked = claim.task_lock(project=project, task_id=task.pk)
        decision = Decision(
            task=locked, item_id=locked.item_id, reviewer=ReviewerFactory(), verdict="correct"
        )
        decision.label = "2"
        outcomes.outcome_settle_first_look(task=locked, decision=decision, use_sql=use_sql)
    assert not Decision.objects.filter(task_id=task.pk).exists()
    assert ReviewTask.objects.get(pk=task.pk).status == TaskStatus.OPEN
