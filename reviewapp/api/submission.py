"""Writes behind the submit endpoints: screen, ingest, and optionally predict within a budget."""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from reviewapp.api.uploads import polyglot_reason
from reviewapp.intake import batcher, bulk, claims, outbox, services
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


def submission_check(
    *, project: Project, submission: Submission, known_keys: dict[str, str] | None = None
) -> services.CheckedImage:
    """Refuse what must not be stored: bad images, polyglots, unknown labels, key conflicts.

    Returns the decoded, checked image, which ``item_submit`` stores without decoding it again.
    ``known_keys`` (client key -> sha256 of the project's items, looked up once for a batch)
    replaces the per-entry query for a key conflict.
    """
    name = submission.filename or "upload"
    checked = services.upload_check(project=project, data=submission.data, name=name)
    reason = polyglot_reason(checked.data, checked.extension)
    if reason:
        raise ValidationError(f"{submission.filename or 'upload'}: refused, {reason}")
    if submission.label and submission.label not in project.labels:
        raise ValidationError(f"label {submission.label!r} is not one of {project.labels}")
    if submission.key:
        if known_keys is not None:
            other = known_keys.get(submission.key, checked.sha256) != checked.sha256
        else:
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
    wait: float = 0.0,
) -> tuple[Item, bool]:
    """Store a checked submission (once per content or key); returns (item, created).

    With a ``wait`` the new item is stored claimed by this request (its lease in the INSERT,
    lasting the wait and a worker's lease): ``item_predict_within`` predicts it, no worker does.
    Otherwise its prediction is enqueued after commit.
    """
    held_until = None
    if wait:
        held_until = timezone.now() + timedelta(seconds=wait + claims.lease_seconds())
    return services.item_ingest(
        project=project,
        checked=checked,
        origin=ItemOrigin.API,
        client_key=submission.key,
        original_filename=submission.filename,
        source={**submission.source, "api_client": client.pk},
        base_label=submission.label,
        enqueue_prediction=not wait,
        held_until=held_until,
    )


def wait_batcher() -> batcher.Batcher:
    """This process's batcher for requests that wait for their prediction (made on first use)."""
    global _BATCHER
    if _BATCHER is None:
        _BATCHER = batcher.Batcher(
            max_batch=settings.HANDOFF_API_BATCH,
            max_wait=settings.HANDOFF_API_BATCH_WAIT_MS / 1000,
            threads=settings.HANDOFF_API_PREDICT_THREADS,
        )
    return _BATCHER


def item_predict_within(*, item: Item, seconds: float) -> batcher.Answer | None:
    """Predict and route the item through this process's batcher, waiting at most `seconds`.

    Precondition: ``item_submit`` stored the item with a ``wait`` (this request holds it).
    Returns the batch's answer when the item was predicted and routed in time, else None: the
    Celery task takes over. The lease is given up when the batcher will not predict the item
    (it failed, found no champion, or never started on it), so a worker may claim it at once;
    a batch still running past the budget keeps it and settles the item itself.
    """
    future = wait_batcher().submit(item)
    try:
        answer = future.result(timeout=seconds)
    except FutureTimeout:
        logger.info("api.sync_predict.timeout item=%s budget=%.1fs", item.pk, seconds)
        if future.cancel():  # still queued: the batcher will not take it now
            claims.item_release(item_id=item.pk)
    except Exception:
        logger.exception("api.sync_predict.failed item=%s", item.pk)
        claims.item_release(item_id=item.pk)
    else:
        logger.info("api.sync_predict.done item=%s result=%s", item.pk, answer.status)
        if answer.status in ("predicted", "already-predicted"):
            return answer  # routed: decided by the model or waiting in a queue
        claims.item_release(item_id=item.pk)
    # Not finished (no champion yet, a timeout or a failure): the outbox takes the item over.
    item_id = item.pk
    transaction.on_commit(lambda: outbox.prediction_enqueue(item_id=item_id))
    return None


@dataclass(frozen=True)
class EntryError:
    """Why entry ``index`` of a batch was refused: a code (invalid, conflict) and a message."""

    index: int
    code: str
    message: str


@dataclass
class BatchResult:
    """What a batch stored, (index, item, created) in entry order, and the entries it refused."""

    stored: list[tuple[int, Item, bool]]
    errors: list[EntryError]


def _taken_keys(*, project: Project, submissions: list[Submission | EntryError]) -> dict:
    keys = {s.key for s in submissions if isinstance(s, Submission) and s.key}
    if not keys:
        return {}
    rows = Item.objects.filter(project=project, client_key__in=keys)
    return dict(rows.values_list("client_key", "sha256"))


def _batch_check(
    *, project: Project, submissions: list[Submission | EntryError], partial: bool
) -> tuple[list[tuple[int, Submission, services.CheckedImage]], list[EntryError]]:
    """Check every entry as strictly as a single upload; conflicts raise unless ``partial``."""
    taken = _taken_keys(project=project, submissions=submissions)
    good: list[tuple[int, Submission, services.CheckedImage]] = []
    errors: list[EntryError] = []
    keys: dict[str, bytes] = {}
    for index, entry in enumerate(submissions):
        if isinstance(entry, EntryError):
            errors.append(entry)
            continue
        try:
            image = submission_check(project=project, submission=entry, known_keys=taken)
            if entry.key and keys.setdefault(entry.key, entry.data) != entry.data:
                raise services.IdempotencyConflict(
                    f"idempotency key {entry.key!r} is used twice in this batch"
                )
        except services.IdempotencyConflict as exc:
            if not partial:
                raise
            errors.append(EntryError(index, "conflict", "; ".join(exc.messages)))
        except ValidationError as exc:
            errors.append(EntryError(index, "invalid", "; ".join(exc.messages)))
        else:
            good.append((index, entry, image))
    return good, errors


def batch_submit(
    *,
    client: ApiClient,
    project: Project,
    submissions: list[Submission | EntryError],
    partial: bool = False,
) -> BatchResult:
    """Check every entry, then store the good ones in one transaction.

    By default one bad entry stores nothing (ValidationError naming each bad entry, or
    IdempotencyConflict); with ``partial`` the good entries are stored and the bad ones returned.
    """
    good, errors = _batch_check(project=project, submissions=submissions, partial=partial)
    if errors and not partial:
        raise ValidationError([f"item {e.index}: {e.message}" for e in errors])
    entries = [
        bulk.BulkEntry(
            checked=image,
            client_key=entry.key,
            original_filename=entry.filename,
            source={**entry.source, "api_client": client.pk},
            base_label=entry.label,
        )
        for _, entry, image in good
    ]
    stored = bulk.items_bulk_ingest(project=project, origin=ItemOrigin.API, entries=entries)
    return BatchResult(
        stored=[
            (index, item, created)
            for (index, _, _), (item, created) in zip(good, stored, strict=True)
        ],
        errors=errors,
    )
