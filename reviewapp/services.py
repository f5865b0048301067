"""Domain writes: ingest, predictions, routing into queues, model registration and aliases.

Review-queue writes (claim, decide) live in ``reviewapp.queues``. Every function here takes
keyword-only arguments and leaves side effects (Celery enqueues) to ``transaction.on_commit``.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from reviewapp import dispatch, media, ml, rollout_policy, routing
from reviewapp.models import (
    Alias,
    AliasAssignment,
    DecidedBy,
    DriftSample,
    Item,
    ItemOrigin,
    ModelVersion,
    Outcome,
    Prediction,
    Project,
    ReviewTask,
    RolloutEvent,
    RolloutEventKind,
    TaskStatus,
    item_upload_path,
)

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


class IdempotencyConflict(ValidationError):
    """The client key is already used by an item with different content."""


@dataclass(frozen=True)
class CheckedImage:
    """An upload that decoded fully: its bytes, digest, format and size."""

    data: bytes
    sha256: str
    extension: str
    width: int
    height: int


def image_check(*, data: bytes, name: str = "upload") -> CheckedImage:
    """Validate an uploaded image fully (format allowlist, size and pixel caps, full decode)."""
    if not data:
        raise ValidationError(f"{name}: the file is empty")
    if len(data) > settings.HANDOFF_MAX_UPLOAD_BYTES:
        limit_mb = settings.HANDOFF_MAX_UPLOAD_BYTES / 1024 / 1024
        raise ValidationError(f"{name}: the file is larger than {limit_mb:.0f} MB")
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


def item_ingest(
    *,
    project: Project,
    data: bytes,
    origin: str = ItemOrigin.UPLOAD,
    client_key: str = "",
    original_filename: str = "",
    source: dict[str, Any] | None = None,
    base_label: str = "",
    enqueue_prediction: bool = True,
) -> tuple[Item, bool]:
    """Store an image once per project and enqueue its prediction; returns (item, created)."""
    checked = image_check(data=data, name=original_filename or "upload")
    if base_label and base_label not in project.labels:
        raise ValidationError(f"label {base_label!r} is not one of {project.labels}")
    existing = _existing_item(project=project, checked=checked, client_key=client_key)
    if existing is not None:
        return existing, False
    item = Item(
        project=project,
        sha256=checked.sha256,
        image_format=checked.extension,
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
        item.prediction_due_at = dispatch.prediction_due_after_send()
    staged = media.media_stage(name=item_upload_path(item, ""), data=checked.data)
    item.image.name = staged.name
    try:
        with transaction.atomic():
            item.save()
            staged.publish()  # renamed before COMMIT: a committed row always has its file
            if enqueue_prediction:
                transaction.on_commit(lambda: dispatch.prediction_enqueue(item_id=item.pk))
    except IntegrityError:
        staged.discard()
        existing = _existing_item(project=project, checked=checked, client_key=client_key)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        staged.discard()
        raise
    logger.debug("item.ingested item=%s project=%s origin=%s", item.pk, project.slug, origin)
    return item, True


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


def champion_of(project: Project) -> ModelVersion | None:
    """The project's current champion model version, if any."""
    assignment = (
        AliasAssignment.objects.select_related("model_version")
        .filter(project=project, alias=Alias.CHAMPION, ended_at__isnull=True)
        .first()
    )
    return assignment.model_version if assignment else None


def prediction_record(
    *, item: Item, model_version: ModelVersion, result: ml.PredictionResult, latency_ms: float
) -> tuple[Prediction, bool]:
    """Store a prediction once per (item, model version); a repeat returns the stored one."""
    try:
        with transaction.atomic():
            prediction = Prediction.objects.create(
                item=item,
                model_version=model_version,
                label=result.label,
                confidence=float(result.confidence),
                probabilities={k: float(v) for k, v in result.probabilities.items()},
                ood_score=float(result.ood_score),
                is_ood=bool(result.is_ood),
                latency_ms=latency_ms,
            )
            if result.embedding is not None or result.image_stats is not None:
                DriftSample.objects.create(
                    prediction=prediction,
                    embedding=list(result.embedding or []),
                    image_stats=dict(result.image_stats or {}),
                )
    except IntegrityError:
        return Prediction.objects.get(item=item, model_version=model_version), False
    return prediction, True


def prediction_route(
    *, prediction: Prediction, challenger_prediction: Prediction | None = None
) -> ReviewTask | None:
    """Route a champion prediction by the rollout policy: auto-accept it or open a review task.

    Returns the review task, or None when the model decided (or the item was already decided).
    """
    item = prediction.item
    project = item.project
    if hasattr(item, "outcome"):
        return None
    open_task = ReviewTask.objects.filter(
        item=item, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
    ).first()
    if open_task is not None:  # a redelivery: the item is already waiting for a human
        return open_task
    decision = routing.route(
        prediction=rollout_policy.Scored.of(prediction),
        policy=rollout_policy.Policy.from_project(project),
        buckets=routing.Buckets.of(project_id=project.pk, key=item.key),
        challenger=rollout_policy.Scored.of(challenger_prediction)
        if challenger_prediction
        else None,
    )
    acting = challenger_prediction if decision.acting == routing.CHALLENGER else prediction
    if decision.auto_accept:
        _outcome_auto_accept(prediction=acting, audit_probability=decision.audit_probability)
        return None
    try:
        with transaction.atomic():
            task, _ = ReviewTask.objects.get_or_create(
                item=item,
                reason=decision.reason,
                status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED],
                defaults={
                    "project": project,
                    "prediction": acting,
                    "priority": decision.priority,
                    "audit_probability": decision.audit_probability,
                    "status": TaskStatus.OPEN,
                },
            )
    except IntegrityError:
        task = ReviewTask.objects.get(
            item=item, reason=decision.reason, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        )
    return task


def _outcome_auto_accept(*, prediction: Prediction, audit_probability: float | None) -> None:
    """The model decides: store its label as the outcome, with the audit probability it had."""
    try:
        with transaction.atomic():
            Outcome.objects.create(
                item_id=prediction.item_id,
                label=prediction.label,
                decided_by=DecidedBy.MODEL,
                model_version_id=prediction.model_version_id,
                audit_probability=audit_probability if audit_probability is not None else 0.0,
            )
    except IntegrityError:
        return  # decided already (a redelivery): the first outcome stands
    logger.info("prediction.auto_accepted item=%s label=%s", prediction.item_id, prediction.label)


def model_version_register(
    *,
    project: Project,
    artifact_path: str,
    sha256: str,
    metadata: dict[str, Any],
    training_run=None,
) -> ModelVersion:
    """Register a saved artifact as the project's next model version (a candidate)."""
    with transaction.atomic():
        last = (
            ModelVersion.objects.select_for_update()
            .filter(project=project)
            .order_by("-number")
            .first()
        )
        return ModelVersion.objects.create(
            project=project,
            number=(last.number + 1) if last else 1,
            artifact_path=artifact_path,
            sha256=sha256,
            architecture=str(metadata.get("arch", metadata.get("architecture", ""))),
            labels=list(metadata.get("labels", [])),
            input_size=int(metadata.get("image_size", metadata.get("input_size", 0)) or 0),
            resize_method=str(metadata.get("resize_method", "")),
            metadata=metadata,
            metrics=dict(metadata.get("metrics", {})),
            training_run=training_run,
        )


def champion_register(*, project: Project, artifact, reason: str, actor=None) -> ModelVersion:
    """Register a saved artifact (``path``, ``sha256``, ``metadata``) and make it the champion:
    how seeds, fixtures and benchmarks give a project its model."""
    version = model_version_register(
        project=project,
        artifact_path=str(artifact.path),
        sha256=artifact.sha256,
        metadata=artifact.metadata,
    )
    alias_set(
        project=project, alias=Alias.CHAMPION, model_version=version, actor=actor, reason=reason
    )
    return version


def alias_set(
    *, project: Project, alias: str, model_version: ModelVersion, actor=None, reason: str
) -> AliasAssignment:
    """Move an alias to a model version, closing the previous holder; logged as an event."""
    if model_version.project_id != project.pk:
        raise ValidationError("the model version belongs to another project")
    if not reason.strip():
        raise ValidationError("an alias move needs a reason")
    now = timezone.now()
    with transaction.atomic():
        current = (
            AliasAssignment.objects.select_for_update()
            .filter(project=project, alias=alias, ended_at__isnull=True)
            .first()
        )
        if current is not None:
            if current.model_version_id == model_version.pk:
                return current
            current.ended_at = now
            current.save(update_fields=["ended_at"])
        assignment = AliasAssignment.objects.create(
            project=project,
            alias=alias,
            model_version=model_version,
            started_at=now,
            actor=actor,
            reason=reason,
        )
        RolloutEvent.objects.create(
            project=project,
            kind=RolloutEventKind.ALIAS,
            actor=actor,
            actor_label=actor.get_username() if actor else "system",
            from_value=f"{alias}: v{current.model_version.number}" if current else "",
            to_value=f"{alias}: v{model_version.number}",
            reason=reason,
            evidence={"metrics": model_version.metrics},
        )
    return assignment
