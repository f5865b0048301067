"""Signal receivers: they only enqueue, the work is in services (see STYLE.md)."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from reviewapp.models import Outcome


@receiver(post_save, sender=Outcome, dispatch_uid="reviewapp.outcome_webhooks")
def outcome_created(sender, instance: Outcome, created: bool, raw: bool = False, **kwargs) -> None:
    """A new final outcome: send it to the client webhooks once the transaction commits."""
    if created and not raw:
        from reviewapp import webhooks

        webhooks.outcome_finalised_on_commit(instance.pk)
