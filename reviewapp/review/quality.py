"""Reviewer quality: double review, adjudication of disagreements, undo rules.

Callers hold the transaction (and the task's row lock); these functions only write rows.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from reviewapp.models import (
    REASON_PRIORITY,
    DecidedBy,
    Decision,
    Outcome,
    ReviewReason,
    ReviewTask,
    RunState,
    TaskStatus,
    TrainingRun,
    Verdict,
)
from reviewapp.review import outcomes
from reviewapp.rollout import stats


class UndoRefused(ValidationError):
    """An undo that would lose or contradict work already done."""


def may_adjudicate(user) -> bool:
    """Adjudication is for rollout admins."""
    return user.has_perm("reviewapp.manage_rollout")


def wants_double_review(*, project, item) -> bool:
    """Whether this item is in the project's double-review sample (deterministic per item)."""
    return stats.unit_hash(project.pk, item.key, "double-review") < project.double_review_rate


def _open_task(*, task: ReviewTask, reason: str) -> ReviewTask | None:
    try:
        with transaction.atomic():
            return ReviewTask.objects.create(
                project_id=task.project_id,
                item_id=task.item_id,
                prediction_id=task.prediction_id,
                reason=reason,
                priority=REASON_PRIORITY[reason],
            )
    except IntegrityError:
        return None  # already open: one open task per item and reason


def gold_accuracy(*, project, reviewer) -> tuple[int, int]:
    """The reviewer's (correct, answered) gold tasks in the project; undone and skips left out."""
    counts = Decision.objects.filter(
        item__project=project, reviewer=reviewer, task__gold_check=True, undone_at__isnull=True
    ).aggregate(
        n=Count("pk", filter=~Q(verdict=Verdict.SKIP)),
        correct=Count("pk", filter=~Q(verdict=Verdict.SKIP) & Q(label=F("item__gold_label"))),
    )
    return counts["correct"], counts["n"]


def reviewer_below_bar(*, project, reviewer) -> bool:
    """Whether the reviewer has answered enough gold tasks and is below the project's bar."""
    if project.gold_min_accuracy <= 0:
        return False  # no bar: spares the count
    correct, n = gold_accuracy(project=project, reviewer=reviewer)
    return n >= max(project.gold_min_n, 1) and correct / n < project.gold_min_accuracy


def double_review_maybe_open(*, task: ReviewTask, reviewer=None) -> ReviewTask | None:
    """After a first human decision, queue a blind second review when the item is sampled or
    when the deciding reviewer is below the project's quality bar on gold."""
    project = task.project
    sampled = project.double_review_rate > 0 and wants_double_review(
        project=project, item=task.item
    )  # the rate is checked first: it spares loading the item
    if not sampled and not (
        reviewer is not None and reviewer_below_bar(project=project, reviewer=reviewer)
    ):
        return None
    return _open_task(task=task, reason=ReviewReason.DOUBLE_REVIEW)


def _same_verdict(first: Outcome, decision: Decision) -> bool:
    if decision.verdict == Verdict.OUT_OF_DOMAIN or first.is_out_of_domain:
        return first.is_out_of_domain and decision.verdict == Verdict.OUT_OF_DOMAIN
    return first.label == decision.label


def second_review_compare(*, task: ReviewTask, decision: Decision) -> ReviewTask | None:
    """Compare a second review with the outcome; a disagreement goes to adjudication."""
    outcome = Outcome.objects.filter(item_id=task.item_id).first()
    if outcome is None or _same_verdict(outcome, decision):
        return None
    return _open_task(task=task, reason=ReviewReason.ADJUDICATION)


def adjudication_settle(*, task: ReviewTask, decision: Decision) -> Outcome:
    """The adjudicator's verdict becomes the item's final outcome."""
    outcome = Outcome.objects.select_for_update().get(item_id=task.item_id)
    return outcomes.outcome_revise(
        outcome=outcome,
        label=decision.label,
        is_out_of_domain=decision.verdict == Verdict.OUT_OF_DOMAIN,
        decision=decision,
    )


def _consumed_by_training(decision: Decision) -> bool:
    runs = TrainingRun.objects.filter(
        project_id=decision.item.project_id,
        created_at__gte=decision.created_at,
        state__in=[RunState.QUEUED, RunState.RUNNING, RunState.SUCCEEDED],
    ).values_list("snapshot", flat=True)
    return any(decision.item_id == row[0] for snapshot in runs for row in snapshot)


def undo_check(*, decision: Decision) -> None:
    """Refuse an undo that would contradict later work (training, a second review, a claim)."""
    if decision.task.reason == ReviewReason.ADJUDICATION:
        raise UndoRefused("Adjudications are final and cannot be undone here.")
    if decision.verdict == Verdict.SKIP:
        task = decision.task
        if task.status != TaskStatus.OPEN or task.claimed_by_id not in (None, decision.reviewer_id):
            raise UndoRefused("Another reviewer has taken this item since you skipped it.")
        return
    if _consumed_by_training(decision):
        raise UndoRefused("A training run already uses this decision; it can no longer be undone.")
    later = Decision.objects.filter(
        item_id=decision.item_id, created_at__gt=decision.created_at, undone_at__isnull=True
    ).exclude(pk=decision.pk)
    if later.exists():
        raise UndoRefused("Another reviewer has reviewed this item since; it can't be undone.")


def undo_consequences(*, decision: Decision) -> None:
    """Remove what an undone decision caused: its outcome and any review it opened."""
    if decision.task.gold_check:
        return  # a gold answer caused nothing: no outcome, no follow-up review
    open_statuses = [TaskStatus.OPEN, TaskStatus.CLAIMED]
    followups = {
        ReviewReason.DOUBLE_REVIEW: [ReviewReason.ADJUDICATION],
    }.get(decision.task.reason, [ReviewReason.DOUBLE_REVIEW])
    ReviewTask.objects.filter(
        item_id=decision.item_id, reason__in=followups, status__in=open_statuses
    ).update(status=TaskStatus.CANCELLED, closed_at=timezone.now())
    outcomes.outcome_withdraw(decision=decision)


def outcome_relabel(*, item, label: str, actor) -> Outcome:
    """An admin's correction of a stored label, recorded as a decision like any other.

    The correction is a closed adjudication task with its decision; the item's outcome (created
    for base-set items, which have none) points to it, so the audit trail keeps who changed what.
    """
    if label not in item.project.labels:
        raise ValidationError(f"{label!r} is not a label of {item.project.name}.")
    now = timezone.now()
    with transaction.atomic():
        outcome = Outcome.objects.select_for_update().filter(item=item).first()
        previous = outcome.label if outcome else item.base_label
        task = ReviewTask.objects.create(
            project_id=item.project_id,
            item=item,
            reason=ReviewReason.ADJUDICATION,
            priority=REASON_PRIORITY[ReviewReason.ADJUDICATION],
            status=TaskStatus.DONE,
            claimed_by=actor,
            closed_at=now,
        )
        decision = Decision.objects.create(
            task=task,
            item=item,
            reviewer=actor,
            verdict=Verdict.CORRECT,
            label=label,
            suggested_label=previous or "",
            suggestion_shown=True,
        )
        if outcome is None:
            outcome = outcomes.outcome_create(
                item_id=item.pk, label=label, decided_by=DecidedBy.HUMAN, decision=decision
            )
        else:
            outcomes.outcome_revise(
                outcome=outcome,
                label=label,
                is_out_of_domain=False,
                decision=decision,
                decided_by=DecidedBy.HUMAN,
            )
    return outcome
