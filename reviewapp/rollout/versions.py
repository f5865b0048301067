"""Model versions and their aliases: register an artifact, move champion/challenger, read them."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from reviewapp.models import (
    Alias,
    AliasAssignment,
    ModelVersion,
    Project,
    RolloutEvent,
    RolloutEventKind,
)

logger = logging.getLogger(__name__)


def champion_of(project: Project) -> ModelVersion | None:
    """The project's current champion model version, if any."""
    assignment = (
        AliasAssignment.objects.select_related("model_version")
        .filter(project=project, alias=Alias.CHAMPION, ended_at__isnull=True)
        .first()
    )
    return assignment.model_version if assignment else None


def serving_versions(project: Project) -> tuple[ModelVersion | None, ModelVersion | None]:
    """(champion, challenger) for the prediction worker: one query, each version's metadata left
    unread (serving needs the artifact's path and hash only; metadata is loaded if touched)."""
    holders = {
        row.alias: row.model_version
        for row in AliasAssignment.objects.select_related("model_version")
        .defer("model_version__metadata")
        .filter(
            project=project, alias__in=[Alias.CHAMPION, Alias.CHALLENGER], ended_at__isnull=True
        )
    }
    return holders.get(Alias.CHAMPION), holders.get(Alias.CHALLENGER)


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
