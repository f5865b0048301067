"""Review-queue writes: claiming under a lease, deciding, undoing.

Races are settled by the database: on PostgreSQL the claim takes ``SELECT ... FOR UPDATE SKIP
LOCKED``; elsewhere a conditional UPDATE that only one claimer can win. Double review and
adjudication live in ``reviewapp.review_quality``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from reviewapp.models import (
    Decision,
    Project,
    ReviewReason,
    ReviewTask,
    TaskStatus,
    Verdict,
)
from reviewapp.review import claim, outcomes
from reviewapp.review import quality as review_quality
from reviewapp.rollout import services as rollout
from reviewapp.rollout.routing import suggestion_visible

logger = logging.getLogger(__name__)

UNDO_WINDOW = timedelta(minutes=10)


class DecisionRefused(ValidationError):
    """A decision that cannot be recorded (lease lost, already decided, bad label)."""


def _check_lease(*, task: ReviewTask, reviewer) -> None:
    """Refuse a decision on a lost lease, unless nobody else has claimed the task since."""
    if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise DecisionRefused("This item was already decided; your decision was not recorded.")
    if task.claimed_by_id not in (None, reviewer.pk):
        raise DecisionRefused(
            "Your claim on this item expired and another reviewer has it now; "
            "your decision was not recorded."
        )
    if task.reason == ReviewReason.ADJUDICATION and not review_quality.may_adjudicate(reviewer):
        raise DecisionRefused("Only rollout admins adjudicate disagreements between reviewers.")


def decision_submit(
    *,
    task: ReviewTask,
    reviewer,
    verdict: str,
    label: str = "",
    duration_ms: int | None = None,
) -> Decision:
    """Record a reviewer's verdict on a task and store (or settle) the item's outcome.

    In the shadow stage the reviewer decides blind: the verdict is derived from whether their
    label matches the model's (hidden) suggestion.
    """
    project = Project.objects.get(pk=task.project_id)
    decision, _ = _decide(
        project=project,
        task_id=task.pk,
        reviewer=reviewer,
        choice=(verdict, label, duration_ms),
        claim_next=False,
    )
    return decision


def decision_submit_and_claim(
    *,
    project: Project,
    task_id: int,
    reviewer,
    verdict: str,
    label: str = "",
    duration_ms: int | None = None,
    holding: Iterable[int] = (),
) -> tuple[Decision, tuple | None]:
    """The desk's round trip: decide on a task and claim the next one in one transaction.

    Returns the decision and what the desk shows of the reviewer's next task (claim.PAYLOAD's
    row, for selectors.task_payload_from_row; None when the queue is empty).
    """
    return _decide(
        project=project,
        task_id=task_id,
        reviewer=reviewer,
        choice=(verdict, label, duration_ms),
        holding=holding,
    )


def _decide(
    *,
    project: Project,
    task_id: int,
    reviewer,
    choice: tuple[str, str, int | None],
    holding: Iterable[int] = (),
    claim_next: bool = True,
) -> tuple[Decision, tuple | None]:
    """Record the decision (verdict, label, duration) and, with ``claim_next``, claim the next
    task in the same transaction; then run what follows a decision (the demotion check)."""
    verdict, label, duration_ms = choice
    next_row = None
    with transaction.atomic():
        decision = _decision_record(
            project=project,
            task_id=task_id,
            reviewer=reviewer,
            verdict=verdict,
            label=label,
            duration_ms=duration_ms,
        )
        if claim_next:
            next_row = claim.claim_payload_row(project=project, reviewer=reviewer, holding=holding)
    _decision_recorded(decision)
    return decision, next_row


def _decision_recorded(decision: Decision) -> None:
    if decision.verdict == Verdict.SKIP or decision.task.gold_check:
        return
    logger.info(
        "decision.recorded task=%s reviewer=%s verdict=%s",
        decision.task_id,
        decision.reviewer_id,
        decision.verdict,
    )
    rollout.decision_observed(decision=decision)  # sequential demotion check


def _decision_record(
    *, project: Project, task_id: int, reviewer, verdict: str, label: str, duration_ms: int | None
) -> Decision:
    """Caller holds the transaction: lock the task, check the lease, write the decision."""
    if verdict not in Verdict.values:
        raise DecisionRefused(f"Unknown verdict {verdict!r}.")
    task = claim.task_lock(project=project, task_id=task_id)
    if task is None:
        raise DecisionRefused("This item is not in this project's queue.")
    _check_lease(task=task, reviewer=reviewer)
    suggested = task.suggested or ""
    shown = bool(suggested) and suggestion_visible(
        stage=project.stage, kill_switch=project.kill_switch, reason=task.reason
    )
    verdict, label = _normalise_verdict(
        project=project, verdict=verdict, label=label, suggested=suggested, shown=shown
    )
    decision = Decision(
        task=task,
        item_id=task.item_id,
        reviewer=reviewer,
        verdict=verdict,
        label=label,
        suggested_label=suggested,
        suggestion_shown=shown,
        duration_ms=duration_ms,
    )
    if verdict != Verdict.SKIP and task.gold_check:
        # Scored against the known label (quality.gold_accuracy); never the item's outcome.
        decision.save(force_insert=True)
        task.status, task.closed_at = TaskStatus.DONE, timezone.now()
        task.save(update_fields=["status", "closed_at"])
        return decision
    if verdict != Verdict.SKIP and task.reason not in _SECOND_LOOKS:
        _first_look_settle(task=task, decision=decision)
        return decision
    decision.save(force_insert=True)
    if verdict == Verdict.SKIP:
        task.status, task.claimed_by, task.lease_expires_at = TaskStatus.OPEN, None, None
        task.save(update_fields=["status", "claimed_by", "lease_expires_at"])
        return decision
    _settle(task=task, decision=decision)
    task.status, task.closed_at = TaskStatus.DONE, timezone.now()
    task.save(update_fields=["status", "closed_at"])
    return decision


# Tasks whose decision settles something other than a new outcome (see _settle).
_SECOND_LOOKS = (ReviewReason.DOUBLE_REVIEW, ReviewReason.ADJUDICATION)


def _settle(*, task: ReviewTask, decision: Decision) -> None:
    """A second look: compare with the outcome, or (adjudication) revise it."""
    if task.reason == ReviewReason.DOUBLE_REVIEW:
        review_quality.second_review_compare(task=task, decision=decision)
    else:
        review_quality.adjudication_settle(task=task, decision=decision)


def _first_look_settle(*, task: ReviewTask, decision: Decision) -> None:
    # No savepoint: a clash aborts the caller's whole transaction, which then rolls back.
    try:
        outcomes.outcome_settle_first_look(task=task, decision=decision)
    except IntegrityError:
        raise DecisionRefused("This item already has a final outcome; nothing was changed.")
    review_quality.double_review_maybe_open(task=task, reviewer=decision.reviewer)


def _normalise_verdict(
    *, project: Project, verdict: str, label: str, suggested: str, shown: bool
) -> tuple[str, str]:
    if verdict in (Verdict.SKIP, Verdict.OUT_OF_DOMAIN):
        return verdict, ""
    if verdict == Verdict.CONFIRM:
        if not shown:
            raise DecisionRefused("There is no visible suggestion to confirm; choose a label.")
        return Verdict.CONFIRM, suggested
    if label not in project.labels:
        raise DecisionRefused(
            f"{label!r} is not a label of {project.name}; choose one of "
            f"{', '.join(map(str, project.labels))}."
        )
    return (Verdict.CONFIRM if label == suggested else Verdict.CORRECT), label


def decision_undo(*, project: Project, reviewer) -> ReviewTask:
    """Undo the reviewer's latest decision in this project (within the undo window).

    The decision stays, marked undone; its outcome is removed and the task comes back to the
    same reviewer. Refused once a training run has taken the outcome into its snapshot.
    """
    with transaction.atomic():
        decision = (
            Decision.objects.select_for_update(of=("self",))
            .select_related("task", "item")
            .filter(item__project=project, reviewer=reviewer, undone_at__isnull=True)
            .order_by("-created_at", "-pk")
            .first()
        )
        if decision is None or decision.created_at < timezone.now() - UNDO_WINDOW:
            minutes = int(UNDO_WINDOW.total_seconds() // 60)
            raise DecisionRefused(f"Nothing to undo from the last {minutes} minutes.")
        review_quality.undo_check(decision=decision)
        decision.undone_at = timezone.now()
        decision.save(update_fields=["undone_at"])
        review_quality.undo_consequences(decision=decision)
        task = decision.task
        task.status, task.claimed_by = TaskStatus.CLAIMED, reviewer
        task.lease_expires_at, task.closed_at = timezone.now() + claim.lease_duration(), None
        try:
            with transaction.atomic():
                task.save(update_fields=["status", "claimed_by", "lease_expires_at", "closed_at"])
        except IntegrityError:
            raise DecisionRefused("This item is already back in the queue; nothing was undone.")
    logger.info("decision.undone decision=%s reviewer=%s", decision.pk, reviewer.pk)
    return task
