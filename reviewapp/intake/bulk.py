"""Bulk intake: store hundreds of checked uploads in one transaction (issue 17).

The same promises as ``services.item_ingest``, per batch instead of per item: one query finds
what the project already has, every new file is written under a temporary name before the
transaction, one ``bulk_create`` inserts the rows (each row its own outbox entry), the files are
renamed to their content-addressed names before COMMIT, and the predictions are sent after it.
A race with another writer on the same content falls back to storing item by item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from reviewapp.intake import media, outbox, services
from reviewapp.models import Item, ItemKind, Project, item_upload_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BulkEntry:
    """One upload of a batch, already validated by ``services.upload_check``."""

    checked: services.CheckedImage
    client_key: str = ""
    original_filename: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    base_label: str = ""


def _existing(*, project: Project, entries: Sequence[BulkEntry]) -> tuple[dict, dict]:
    """The project's items with any of these contents or client keys (one query)."""
    digests = {entry.checked.sha256 for entry in entries}
    keys = {entry.client_key for entry in entries if entry.client_key}
    matches = Q(sha256__in=digests)
    if keys:
        matches |= Q(client_key__in=keys)
    by_sha: dict[str, Item] = {}
    by_key: dict[str, Item] = {}
    for item in Item.objects.filter(matches, project=project):
        item.project = project  # saves a query per item when it is serialized
        by_sha[item.sha256] = item
        if item.client_key:
            by_key[item.client_key] = item
    return by_sha, by_key


def _new_item(*, project: Project, origin: str, entry: BulkEntry) -> Item:
    item = services.item_build(
        project=project,
        checked=entry.checked,
        origin=origin,
        client_key=entry.client_key,
        original_filename=entry.original_filename,
        source=entry.source,
        base_label=entry.base_label,
    )
    item.image.name = item_upload_path(item, "")
    return item


def items_bulk_ingest(
    *,
    project: Project,
    origin: str,
    entries: Sequence[BulkEntry],
    enqueue_prediction: bool = True,
) -> list[tuple[Item, bool]]:
    """Store checked uploads in one transaction; (item, created) per entry, in entry order.

    An entry whose content or client key the project already has (or an earlier entry of the
    batch has) returns that item with ``created=False``. Raises ``IdempotencyConflict`` when a
    client key is already used for other content, and ``media.StorageUnavailable`` when the
    disk refuses a write (then nothing of the batch is stored).
    """
    for entry in entries:
        if entry.base_label and entry.base_label not in project.labels:
            raise ValidationError(f"label {entry.base_label!r} is not one of {project.labels}")
    by_sha, by_key = _existing(project=project, entries=entries)
    planned: list[tuple[Item, bool] | None] = []
    new_items: list[tuple[Item, BulkEntry]] = []
    for entry in entries:
        digest, key = entry.checked.sha256, entry.client_key
        if entry.checked.kind == ItemKind.CLIP:  # frames to write too: stored on its own
            planned.append(None)
            continue
        known = by_key.get(key) if key else None
        if known is not None and known.sha256 != digest:
            raise services.IdempotencyConflict(
                f"idempotency key {key!r} was already used for different content"
            )
        known = known or by_sha.get(digest)
        if known is not None:
            planned.append((known, False))
            continue
        item = _new_item(project=project, origin=origin, entry=entry)
        by_sha[digest] = item
        if key:
            by_key[key] = item
        planned.append((item, True))
        new_items.append((item, entry))
    try:
        if new_items:
            _insert(new_items, enqueue_prediction=enqueue_prediction)
    except IntegrityError:  # another writer stored some of this content meanwhile
        logger.info("items.bulk_race project=%s: storing one by one", project.slug)
        planned = [None] * len(entries)
    logger.info("items.bulk_ingested project=%s created=%s", project.slug, len(new_items))
    return [
        done or _one(project=project, origin=origin, entry=entry, enqueue=enqueue_prediction)
        for done, entry in zip(planned, entries, strict=True)
    ]


def _insert(new_items: list[tuple[Item, BulkEntry]], *, enqueue_prediction: bool) -> None:
    """Write the files, insert the rows and publish the files in one transaction."""
    staged = media.media_stage_many(
        [(item.image.name, entry.checked.data) for item, entry in new_items]
    )
    try:
        with transaction.atomic():
            Item.objects.bulk_create([item for item, _ in new_items])
            media.media_publish_many(staged)  # before COMMIT: a committed row has its file
            if enqueue_prediction:
                ids = [item.pk for item, _ in new_items]
                transaction.on_commit(lambda: _enqueue(ids))
    except BaseException:
        for file in staged:
            file.discard()
        raise


def _enqueue(item_ids: list[int]) -> None:
    """A batch's predictions go as batch tasks; a refused send leaves them due for the sweeper."""
    if len(item_ids) == 1:
        outbox.prediction_enqueue(item_id=item_ids[0])
    else:
        outbox.predictions_enqueue(item_ids=item_ids)


def _one(*, project: Project, origin: str, entry: BulkEntry, enqueue: bool) -> tuple[Item, bool]:
    return services.item_ingest(
        project=project,
        checked=entry.checked,
        origin=origin,
        client_key=entry.client_key,
        original_filename=entry.original_filename,
        source=entry.source,
        base_label=entry.base_label,
        enqueue_prediction=enqueue,
    )


@dataclass(frozen=True)
class IngestFile:
    """One file of a folder or upload to ingest: its name, how to read its bytes, its source."""

    name: str
    read: Callable[[], bytes]
    source: dict[str, Any]


@dataclass(frozen=True)
class IngestResult:
    """What became of one file: added, already in the project, or refused (and why)."""

    file: IngestFile
    created: bool = False
    refusal: str | None = None


def files_ingest(
    *, project: Project, origin: str, files: Iterable[IngestFile], chunk_size: int = 200
) -> Iterator[IngestResult]:
    """Check each file fully, then store the good ones ``chunk_size`` per transaction.

    A refused file stores nothing of itself and is reported at once; the others go on. At most
    one chunk of files is held in memory.
    """
    pending: list[tuple[IngestFile, BulkEntry]] = []
    for file in files:
        try:
            checked = services.upload_check(project=project, data=file.read(), name=file.name)
        except ValidationError as exc:
            yield IngestResult(file=file, refusal="; ".join(exc.messages))
            continue
        entry = BulkEntry(checked=checked, original_filename=file.name, source=file.source)
        pending.append((file, entry))
        if len(pending) >= chunk_size:
            yield from _store_chunk(project=project, origin=origin, pending=pending)
            pending = []
    if pending:
        yield from _store_chunk(project=project, origin=origin, pending=pending)


def _store_chunk(
    *, project: Project, origin: str, pending: list[tuple[IngestFile, BulkEntry]]
) -> Iterator[IngestResult]:
    entries = [entry for _, entry in pending]
    stored = items_bulk_ingest(project=project, origin=origin, entries=entries)
    for (file, _), (_, created) in zip(pending, stored, strict=True):
        yield IngestResult(file=file, created=created)
