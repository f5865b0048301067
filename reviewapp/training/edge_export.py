"""Exporting a model version to an ONNX edge bundle, recorded in the version's metadata.

The bundle carries the project's rollout policy as it stands at export time (stage, thresholds,
share, audit rate, priority labels, kill switch), so the device decides what the server would;
the server still re-checks every decision the device reports (``reviewapp/intake/edge.py``).
The export (ONNX graph, parity on up to a thousand images) can take minutes, so the button only
asks for it (``edge_bundle_export_request``: state "queued", a job sent by name) and a worker
runs it (``edge_bundle_export_run``: "running", then "exported" or "refused"); the page refreshes
while it runs. Heavy work runs outside any transaction; each state is written in a short locked
update of ``ModelVersion.metadata["edge_export"]`` (no schema change).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from reviewapp import jobs, ml
from reviewapp.models import Item, ModelVersion
from reviewapp.rollout.policy import Policy

logger = logging.getLogger(__name__)

EXPORT_KEY = "edge_export"
MAX_PARITY_IMAGES = 1000


class EdgeExportRefused(ValidationError):
    """The export was refused; ``parity`` holds the failing cases when parity failed."""

    def __init__(self, message: str, *, parity: dict | None = None):
        super().__init__(message)
        self.parity = parity


def policy_snapshot(*, version: ModelVersion) -> dict[str, Any]:
    """The project's policy in force as plain JSON, for the bundle."""
    project = version.project
    policy = Policy.from_project(project)
    return {
        "project_id": project.pk,
        "project_slug": project.slug,
        "stage": str(policy.stage),
        "labels": list(policy.labels),
        "confidence_threshold": policy.confidence_threshold,
        "class_thresholds": dict(policy.class_thresholds),
        "ood_threshold": policy.ood_threshold,
        "traffic_share": policy.traffic_share,
        "audit_rate": policy.audit_rate,
        "priority_labels": sorted(policy.priority_labels),
        "kill_switch": policy.kill_switch,
        "model_version": version.number,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
    }


def parity_image_paths(*, version: ModelVersion, limit: int = MAX_PARITY_IMAGES) -> list[str]:
    """Stored images of the project on the validation side of the version's split."""
    config = version.metadata.get("train_config", {})
    seed, pct = config.get("seed", 42), config.get("valid_pct", 0.2)
    items = Item.objects.filter(project=version.project).exclude(image="").order_by("pk")
    paths = []
    for key, name in items.values_list("key", "image").iterator(chunk_size=1000):
        if ml.is_validation(key, seed=seed, valid_pct=pct):
            paths.append(str(Path(settings.MEDIA_ROOT) / name))
            if len(paths) >= limit:
                break
    return paths


def _record(*, version: ModelVersion, entry: dict[str, Any]) -> None:
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        locked.metadata = {**locked.metadata, EXPORT_KEY: entry}
        locked.save(update_fields=["metadata"])
    version.metadata = locked.metadata


PENDING_STATES = ("queued", "running")


class EdgeExportBusy(ValidationError):
    """An export of this version is already queued or running."""


def edge_bundle_export_request(*, version: ModelVersion, actor) -> dict[str, Any]:
    """Ask a worker to export the version (after commit); refused while one is pending."""
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        current = locked.metadata.get(EXPORT_KEY) or {}
        if current.get("state") in PENDING_STATES:
            raise EdgeExportBusy("An export of this version is already under way.")
        entry = {
            "state": "queued",
            "at": timezone.now().isoformat(timespec="seconds"),
            "actor": actor.get_username() if actor is not None else "",
            "format": "onnx",
        }
        locked.metadata = {**locked.metadata, EXPORT_KEY: entry}
        locked.save(update_fields=["metadata"])
        jobs.job_send_on_commit(
            jobs.EXPORT_EDGE_BUNDLE, version.pk, actor.pk if actor is not None else None
        )
    version.metadata = locked.metadata
    return entry


def edge_bundle_export_run(*, version_id: int, actor=None) -> str:
    """The worker's side: export a requested version; returns "exported" or "refused"."""
    version = ModelVersion.objects.select_related("project").filter(pk=version_id).first()
    if version is None:
        logger.warning("edge_export.missing version=%s", version_id)
        return "missing"
    pending = version.metadata.get(EXPORT_KEY) or {}
    _record(version=version, entry={**pending, "state": "running"})
    try:
        edge_bundle_export(version=version, actor=actor)
    except EdgeExportRefused:
        return "refused"
    return "exported"


def edge_bundle_export(*, version: ModelVersion, actor=None) -> dict[str, Any]:
    """Export the version to a new bundle folder; raises EdgeExportRefused with the cases."""
    images = parity_image_paths(version=version)
    if not images:
        raise EdgeExportRefused("no validation images of this project to check parity on")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    dest = Path(settings.ARTIFACTS_ROOT) / "bundles" / f"{version.project.slug}-v{version.number}"
    dest = dest / stamp
    entry: dict[str, Any] = {
        "at": timezone.now().isoformat(timespec="seconds"),
        "actor": actor.get_username() if actor is not None else "",
        "format": "onnx",
    }
    try:
        bundle = ml.bundle_export(
            artifact_path=version.artifact_path,
            sha256=version.sha256,
            dest=dest,
            image_paths=images,
            policy=policy_snapshot(version=version),
        )
    except (ml.BundleExportError, ml.ArtifactError) as exc:
        parity = getattr(exc, "parity", None)
        _record(
            version=version,
            entry={**entry, "state": "refused", "error": str(exc), "parity": parity},
        )
        logger.warning("edge_export.refused version=%s error=%s", version.pk, exc)
        raise EdgeExportRefused(str(exc), parity=parity) from exc
    _record(
        version=version,
        entry={
            **entry,
            "state": "exported",
            "path": bundle.path,
            "sha256": bundle.sha256,
            "size_bytes": bundle.size_bytes,
            "parity": bundle.parity,
        },
    )
    logger.info("edge_export.done version=%s bundle=%s", version.pk, bundle.sha256[:12])
    return version.metadata[EXPORT_KEY]
