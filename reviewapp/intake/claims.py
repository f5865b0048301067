"""Prediction workers claim due items in batches: one PostgreSQL statement, or its ORM twin.

The Item row is its own outbox entry (reviewapp/intake/outbox.py): ``prediction_due_at`` is set
until the item is predicted. A worker claims up to a batch of such items by taking a lease
(``prediction_claimed_until``) and pushing ``prediction_due_at`` one requeue delay ahead, so an
item whose worker died is re-sent by the sweeper and claimable again once the lease lapses.
PostgreSQL runs ``CLAIM`` (the candidates locked with SKIP LOCKED and updated in the same
statement, so two workers never claim one item and neither waits for the other). SQLite has no
row locks; its transactions are IMMEDIATE (config/settings.py), so the ORM twin reads the
candidates and updates them with one writer at a time. tests/reviewapp/intake/test_claims.py
checks on PostgreSQL that both claim the same items.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from reviewapp.models import Item

# Oldest due first, following the partial index item_prediction_due; SKIP LOCKED passes over
# rows another worker's claim holds at this moment, and the lease keeps them out afterwards.
CLAIM = """
UPDATE reviewapp_item SET prediction_claimed_until = %(lease)s, prediction_due_at = %(due)s
WHERE id IN (
    SELECT id FROM reviewapp_item
    WHERE prediction_due_at IS NOT NULL
      AND (prediction_claimed_until IS NULL OR prediction_claimed_until < %(now)s)
      AND NOT (id = ANY(%(exclude)s))
    ORDER BY prediction_due_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


def lease_seconds() -> float:
    """How long a claimed item stays with its worker before another may take it."""
    return float(settings.HANDOFF_PREDICTION_LEASE_SECONDS)


def _times(now: datetime) -> dict[str, datetime]:
    return {
        "now": now,
        "lease": now + timedelta(seconds=lease_seconds()),
        "due": now + timedelta(seconds=settings.HANDOFF_PREDICTION_REQUEUE_SECONDS),
    }


def claimable(now: datetime) -> QuerySet[Item]:
    """Items waiting for a prediction that no live lease holds, oldest due first."""
    return Item.objects.filter(
        Q(prediction_claimed_until__isnull=True) | Q(prediction_claimed_until__lt=now),
        prediction_due_at__isnull=False,
    ).order_by("prediction_due_at", "id")


def items_claim_due(
    *, limit: int, exclude: Iterable[int] = (), use_sql: bool | None = None
) -> list[int]:
    """Claim up to ``limit`` due items for this worker; returns their ids.

    ``use_sql`` defaults to PostgreSQL's one statement; tests pass False to run the ORM twin.
    """
    if limit <= 0:
        return []
    if use_sql is None:
        use_sql = connection.vendor == "postgresql"
    times, exclude = _times(timezone.now()), list(exclude)
    if use_sql:
        with connection.cursor() as cursor:
            cursor.execute(CLAIM, {**times, "limit": limit, "exclude": exclude})
            return sorted(row[0] for row in cursor.fetchall())
    with transaction.atomic():  # IMMEDIATE on SQLite: nobody writes between read and update
        ids = list(
            claimable(times["now"]).exclude(pk__in=exclude).values_list("pk", flat=True)[:limit]
        )
        if ids:
            Item.objects.filter(pk__in=ids).update(
                prediction_claimed_until=times["lease"], prediction_due_at=times["due"]
            )
    return sorted(ids)


def items_claim_named(*, item_ids: Iterable[int]) -> list[int]:
    """Claim these items where no other worker's lease holds them; returns those to predict.

    An item out of the outbox (predicted already, or stored without a pending prediction) is
    returned unclaimed: predicting it again writes nothing twice, and it may need its routing.
    """
    ids = list(item_ids)
    if not ids:
        return []
    times = _times(timezone.now())
    with transaction.atomic():
        claimable(times["now"]).filter(pk__in=ids).order_by().update(
            prediction_claimed_until=times["lease"], prediction_due_at=times["due"]
        )
        ours = Item.objects.filter(pk__in=ids).filter(
            Q(prediction_due_at__isnull=True) | Q(prediction_claimed_until=times["lease"])
        )
        return sorted(ours.values_list("pk", flat=True))


def items_settle(*, item_ids: Iterable[int]) -> int:
    """These items are predicted and routed: out of the outbox, lease released."""
    return Item.objects.filter(pk__in=list(item_ids)).update(
        prediction_due_at=None, prediction_claimed_until=None
    )


def item_release(*, item_id: int) -> int:
    """Give up the lease on an item still waiting for its prediction: any worker may claim it."""
    return Item.objects.filter(pk=item_id, prediction_due_at__isnull=False).update(
        prediction_claimed_until=None
    )
