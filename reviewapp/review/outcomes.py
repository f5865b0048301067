"""The one writer of an item's final Outcome, and the one place its webhooks are fanned out.

Every new outcome (a reviewer's decision, the model's automatic decision, an admin's relabel of
an item that had none) is inserted by ``outcome_create``, which also schedules the webhook
deliveries for after the commit; no signal is needed to keep the two in step. A later human
verdict (an adjudication, an admin's relabel) revises it with ``outcome_revise``; an undone
decision takes its outcome away with ``outcome_withdraw``. Nothing else writes Outcome rows.
"""

from __future__ import annotations

from reviewapp.models import Outcome
from reviewapp.review import webhooks


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
