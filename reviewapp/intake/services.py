"""Intake: validate an upload fully and store it once per project, as its own outbox entry.

Every function takes keyword-only arguments and leaves the prediction enqueue to after commit.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from PIL import Image, UnidentifiedImageError

from reviewapp import ml
from reviewapp.intake import clips, media, outbox
from reviewapp.models import (
    Item,
    ItemKind,
    ItemOrigin,
    Project,
    item_frame_path,
    item_upload_path,
)

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = {
    "PNG": "png",
    "JPEG": "jpg",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tiff",  # the first page is what is predicted and shown
    "HEIF": "heic",  # pillow-heif, registered in ReviewappConfig.ready
}


class IdempotencyConflict(ValidationError):
    """The client key is already used by an item with different content."""


@dataclass(frozen=True)
class CheckedImage:
    """An upload that decoded fully: its bytes, digest, format and size (and a clip's frames)."""

    data: bytes
    sha256: str
    extension: str
    width: int
    height: int
    kind: str = ItemKind.IMAGE
    clip: dict[str, Any] = field(default_factory=dict)
    frames: tuple[bytes, ...] = ()


def upload_check(*, project: Project, data: bytes, name: str = "upload") -> CheckedImage:
    """Validate an upload fully: a clip (MP4, WebM, animated GIF) or a still image."""
    _size_check(data=data, name=name)
    kind = ml.clip_sniff(data)
    if kind == "gif":
        kind = "gif" if _animated_gif(data) else None
    if kind is None and name.lower().endswith(clips.VIDEO_SUFFIXES):
        raise ValidationError(f"{name}: not a video we can read (MP4/H.264, WebM/VP9, GIF)")
    if kind is None:
        return image_check(data=data, name=name)
    clip = clips.clip_check(project=project, data=data, name=name)
    return CheckedImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        extension=clip.extension,
        width=clip.width,
        height=clip.height,
        kind=ItemKind.CLIP,
        clip=clip.meta,
        frames=clip.frames,
    )


def _animated_gif(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as header:
            return bool(getattr(header, "is_animated", False))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False  # image_check names what is wrong with it


def _size_check(*, data: bytes, name: str) -> None:
    if not data:
        raise ValidationError(f"{name}: the file is empty")
    if len(data) > settings.HANDOFF_MAX_UPLOAD_BYTES:
        limit_mb = settings.HANDOFF_MAX_UPLOAD_BYTES / 1024 / 1024
        raise ValidationError(f"{name}: the file is larger than {limit_mb:.0f} MB")


def image_check(*, data: bytes, name: str = "upload") -> CheckedImage:
    """Validate an uploaded image fully (format allowlist, size and pixel caps, full decode)."""
    _size_check(data=data, name=name)
    try:
        with Image.open(io.BytesIO(data)) as header:
            fmt, (width, height) = header.format, header.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValidationError(f"{name}: not an image we can read ({exc.__class__.__name__})")
    except Image.DecompressionBombError as exc:
        raise ValidationError(f"{name}: too many pixels ({exc})")
    if fmt not in ALLOWED_FORMATS:
        allowed = ", ".join(sorted(ALLOWED_FORMATS))
        raise ValidationError(f"{name}: format {fmt} is not accepted (use {allowed})")
    if width * height > settings.HANDOFF_MAX_IMAGE_PIXELS:
        raise ValidationError(f"{name}: {width}x{height} has too many pixels")
    if min(width, height) < 1 or max(width, height) / min(width, height) > 50:
        raise ValidationError(f"{name}: absurd dimensions {width}x{height}")
    try:
        ml.load_image(io.BytesIO(data))  # full decode: truncated files fail here
    except ml.ImageLoadError as exc:
        raise ValidationError(f"{name}: {exc}")
    return CheckedImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        extension=ALLOWED_FORMATS[fmt],
        width=width,
        height=height,
    )


def item_build(
    *,
    project: Project,
    checked: CheckedImage,
    origin: str,
    client_key: str = "",
    original_filename: str = "",
    source: dict | None = None,
    base_label: str = "",
    held_until: datetime | None = None,
) -> Item:
    """The unsaved Item row of a checked upload; outside a base set it is its own outbox entry.

    ``held_until`` stores the row claimed by its caller until then (a prediction lease, as
    reviewapp/intake/claims.py takes): the workers leave it to the caller, who predicts it.
    """
    item = Item(
        project=project,
        sha256=checked.sha256,
        image_format=checked.extension,
        kind=checked.kind,
        clip=checked.clip,
        width=checked.width,
        height=checked.height,
        key=client_key or checked.sha256,
        client_key=client_key,
        origin=origin,
        base_label=base_label,
        source=source or {},
        original_filename=(original_filename or "")[:255],
    )
    if origin != ItemOrigin.BASE:  # the row is its own outbox entry until predicted
        item.prediction_due_at = outbox.prediction_due_after_send()
        item.prediction_claimed_until = held_until
    return item


def item_ingest(
    *,
    project: Project,
    data: bytes = b"",
    checked: CheckedImage | None = None,
    origin: str = ItemOrigin.UPLOAD,
    client_key: str = "",
    original_filename: str = "",
    source: dict[str, Any] | None = None,
    base_label: str = "",
    enqueue_prediction: bool = True,
    held_until: datetime | None = None,
) -> tuple[Item, bool]:
    """Store an image or clip once per project and enqueue its prediction; (item, created).

    ``checked`` is an upload that ``upload_check`` has already validated (the API checks a whole
    batch before it stores any): it is not decoded a second time. ``held_until`` (with
    ``enqueue_prediction`` False) stores a new item claimed by the caller, who predicts it at
    once (the API's ``wait``): no worker claims it before the lease lapses.
    """
    if checked is None:
        checked = upload_check(project=project, data=data, name=original_filename or "upload")
    if base_label and base_label not in project.labels:
        raise ValidationError(f"label {base_label!r} is not one of {project.labels}")
    existing = _existing_item(project=project, checked=checked, client_key=client_key)
    if existing is not None:
        return existing, False
    item = item_build(
        project=project,
        checked=checked,
        origin=origin,
        client_key=client_key,
        original_filename=original_filename,
        source=source,
        base_label=base_label,
        held_until=held_until,
    )
    staged = _stage_files(item=item, checked=checked)
    item.image.name = staged[0].name
    try:
        with transaction.atomic():
            item.save()
            for file in staged:  # renamed before COMMIT: a committed row always has its files
                file.publish()
            if enqueue_prediction:
                transaction.on_commit(lambda: outbox.prediction_enqueue(item_id=item.pk))
    except IntegrityError:
        _discard(staged)
        existing = _existing_item(project=project, checked=checked, client_key=client_key)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        _discard(staged)
        raise
    logger.debug("item.ingested item=%s project=%s origin=%s", item.pk, project.slug, origin)
    return item, True


def _stage_files(*, item: Item, checked: CheckedImage) -> list[media.StagedFile]:
    """The upload and a clip's frames, written under temporary names (the upload first)."""
    staged: list[media.StagedFile] = []
    try:
        staged.append(media.media_stage(name=item_upload_path(item, ""), data=checked.data))
        for index, png in enumerate(checked.frames):
            staged.append(media.media_stage(name=item_frame_path(item, index), data=png))
    except BaseException:
        _discard(staged)
        raise
    return staged


def _discard(staged: list[media.StagedFile]) -> None:
    for file in staged:
        file.discard()


def _existing_item(*, project: Project, checked: CheckedImage, client_key: str) -> Item | None:
    if client_key:
        same_key = Item.objects.filter(project=project, client_key=client_key).first()
        if same_key is not None:
            if same_key.sha256 != checked.sha256:
                raise IdempotencyConflict(
                    f"idempotency key {client_key!r} was already used for different content"
                )
            return same_key
    return Item.objects.filter(project=project, sha256=checked.sha256).first()
