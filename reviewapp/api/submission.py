"""Writes behind the submit endpoints: screen, ingest, and optionally predict within a budget."""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from reviewapp.api.uploads import polyglot_reason
from reviewapp.intake import batcher, outbox, services
from reviewapp.models import ApiClient, Item, ItemOrigin, Project

logger = logging.getLogger(__name__)

_BATCHER: batcher.Batcher | None = None


@dataclass
class Submission:
    """One image or clip a client sent, before it is stored."""

    data: bytes
    filename: str = ""
    key: str = ""
    label: str = ""
    source: dict[str, Any] = field(default_factory=dict)


def submission_check(*, project: Project, submission: Submission) -> services.CheckedImage:
    """Refuse what must not be stored: bad images, polyglots, unknown labels, key conflicts.

    Returns the decoded, checked image, which ``item_submit`` stores without decoding it again.
    """
    name = submission.filename or "upload"
    checked = services.upload_check(project=project, data=submission.data, name=name)
    reason = polyglot_reason(checked.data, checked.extension)
    if reason:
        raise ValidationError(f"{submission.filename or 'upload'}: refused, {reason}")
    if submission.label and submission.label not in project.labels:
        raise ValidationError(f"label {submission.label!r} is not one of {project.labels}")
    if submission.key:
        other = (
            Item.objects.filter(project=project, client_key=submission.key)
            .exclude(sha256=checked.sha256)
            .exists()
        )
        if other:
            raise services.IdempotencyConflict(
                f"idempotency key {submission.key!r} was already used for different content"
            )
    return checked


def item_submit(
    *,
    client: ApiClient,
    project: Project,
    submission: Submission,
    checked: services.CheckedImage,
    enqueue: bool = True,
) -> tuple[Item, bool]:
    """Store a checked submission (once per content or key); returns (item, created)."""
    return services.item_ingest(
        project=project,
        checked=checked,
        origin=ItemOrigin.API,
        client_key=submission.key,
        original_filename=submission.filename,
        source={**submission.source, "api_client": client.pk},
        base_label=submission.label,
        enqueue_prediction=enqueue,
    )


def wait_batcher() -> batcher.Batcher:
    """This process's batcher for requests that wait for their prediction (made on first use)."""
    global _BATCHER
    if _BATCHER is None:
        _BATCHER = batcher.Batcher(
            max_batch=settings.HANDOFF_API_BATCH,
            max_wait=settings.HANDOFF_API_BATCH_WAIT_MS / 1000,
        )
    return _BATCHER


def item_predict_within(*, item: Item, seconds: float) -> bool:
    """Predict and route the item through this process's batcher, waiting at most `seconds`.

    When the budget runs out (or the prediction fails) the Celery task takes over; prediction
    is idempotent, so a late finish of the synchronous attempt does no harm. Returns True when
    the synchronous prediction finished in time.
    """
    future = wait_batcher().submit(item.pk)
    try:
        result = future.result(timeout=seconds)
    except FutureTimeout:
        logger.info("api.sync_predict.timeout item=%s budget=%.1fs", item.pk, seconds)
    except Exception:
        logger.exception("api.sync_predict.failed item=%s", item.pk)
    else:
        logger.info("api.sync_predict.done item=%s result=%s", item.pk, result)
        if result in ("predicted", "already-predicted"):
            return True  # routed: decided by the model or waiting in a queue
    # Not finished (no champion yet, a timeout or a failure): the outbox takes the item over.
    item_id = item.pk
    transaction.on_commit(lambda: outbox.prediction_enqueue(item_id=item_id))
    return False


def batch_submit(
    *, client: ApiClient, project: Project, submissions: list[Submission]
) -> list[tuple[Item, bool]]:
    """Check every entry first (a bad one stores nothing), then store them all."""
    errors: dict[str, list[str]] = {}
    keys: dict[str, bytes] = {}
    checked: list[services.CheckedImage] = []
    for index, submission in enumerate(submissions):
        try:
            checked.append(submission_check(project=project, submission=submission))
            if submission.key and keys.setdefault(submission.key, submission.data) != (
                submission.data
            ):
                raise services.IdempotencyConflict(
                    f"idempotency key {submission.key!r} is used twice in this batch"
                )
        except services.IdempotencyConflict:
            raise
        except ValidationError as exc:
            errors[str(index)] = exc.messages
    if errors:
        raise ValidationError([f"item {i}: {'; '.join(m)}" for i, m in errors.items()])
    return [
        item_submit(client=client, project=project, submission=submission, checked=image)
        for submission, image in zip(submissions, checked, strict=True)
    ]
