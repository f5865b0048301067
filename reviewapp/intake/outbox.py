"""Prediction dispatch that survives a broker outage: the Item row is the outbox.

At ingest an item gets ``prediction_due_at`` (now + the requeue delay) in the same transaction
as its row. After commit the task is sent; when the broker refuses, the item is marked due now.
The prediction task clears the mark when it has run. The sweeper (a beat task) re-sends every
overdue item, so an item waits at most one sweep after the broker is back, and one requeue
delay when a message was lost; the task is idempotent, so a second send does no harm.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from reviewapp import jobs
from reviewapp.models import Item

logger = logging.getLogger(__name__)

SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def prediction_due_after_send() -> datetime:
    """When an item whose task was just sent is due again (its message may have been lost)."""
    return timezone.now() + timedelta(seconds=settings.HANDOFF_PREDICTION_REQUEUE_SECONDS)


def _send(item_id: int) -> None:
    jobs.job_send(jobs.PREDICT_ITEM, item_id, retry=True, retry_policy=SEND_RETRY)


def _send_batch() -> None:
    jobs.job_send(jobs.PREDICT_BATCH, retry=True, retry_policy=SEND_RETRY)


def prediction_enqueue(*, item_id: int) -> bool:
    """Send the prediction task (after commit); on a broker error mark the item due now."""
    try:
        _send(item_id)
    except (BrokerError, OSError) as exc:
        logger.warning("prediction.enqueue_failed item=%s error=%s", item_id, exc)
        _mark_due(item_id=item_id, at=timezone.now())
        return False
    return True


def predictions_enqueue(*, item_ids: list[int]) -> bool:
    """Send one batch task per HANDOFF_PREDICT_BATCH new items (each drains that many due items).

    On a broker error every item is marked due now for the sweeper. Returns True when all went.
    """
    batches = -(-len(item_ids) // max(1, settings.HANDOFF_PREDICT_BATCH))
    try:
        for _ in range(batches):
            _send_batch()
    except (BrokerError, OSError) as exc:
        logger.warning("prediction.batch_enqueue_failed items=%s error=%s", len(item_ids), exc)
        Item.objects.filter(pk__in=item_ids, prediction_due_at__isnull=False).update(
            prediction_due_at=timezone.now()
        )
        return False
    return True


def _mark_due(*, item_id: int, at: datetime) -> None:
    try:
        Item.objects.filter(pk=item_id, prediction_due_at__isnull=False).update(
            prediction_due_at=at
        )
    except DatabaseError:
        # The row keeps its later due time: the sweeper still finds it, just later.
        logger.exception("prediction.mark_due_failed item=%s", item_id)


def prediction_settle(*, item_id: int) -> None:
    """The prediction task ran to its end for this item: take it out of the outbox."""
    Item.objects.filter(pk=item_id, prediction_due_at__isnull=False).update(prediction_due_at=None)


def predictions_sweep(*, limit: int = 500) -> int:
    """Re-send the prediction of every overdue item (oldest first); returns how many were sent."""
    now = timezone.now()
    due = list(
        Item.objects.filter(prediction_due_at__lte=now)
        .order_by("prediction_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for item_id in due:
        claimed = Item.objects.filter(pk=item_id, prediction_due_at__lte=now).update(
            prediction_due_at=prediction_due_after_send()
        )
        if not claimed:  # settled meanwhile, or another sweeper took it
            continue
        try:
            _send(item_id)
        except (BrokerError, OSError) as exc:
            _mark_due(item_id=item_id, at=now)
            logger.warning("prediction.sweep_stopped sent=%s error=%s", sent, exc)
            break
        sent += 1
    if due:
        logger.info("prediction.swept due=%s sent=%s", len(due), sent)
    return sent
