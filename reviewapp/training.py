"""Training runs: freeze a snapshot, execute it through mlcore, register the result.

``training_run_start`` freezes the dataset (item ids and labels) in the database at once;
``training_run_execute`` can then run anywhere (a Celery worker, or the seed command) and is
idempotent: only a queued run moves to running, by a conditional update.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from reviewapp import ml, services
from reviewapp.models import (
    Item,
    ModelVersion,
    Outcome,
    Project,
    RunState,
    TrainingRun,
)

logger = logging.getLogger(__name__)

DEFAULT_PARAMS: dict[str, Any] = {"arch": "resnet18", "epochs": 3, "image_size": 32}


def snapshot_freeze(*, project: Project) -> list[list[Any]]:
    """The project's labeled data now: base-set items plus human outcomes (not out of domain)."""
    rows = {
        item_id: label
        for item_id, label in Item.objects.filter(project=project)
        .exclude(base_label="")
        .values_list("id", "base_label")
    }
    human = Outcome.objects.filter(
        item__project=project, decided_by="human", is_out_of_domain=False
    ).values_list("item_id", "label")
    rows.update({item_id: label for item_id, label in human})
    return [[item_id, rows[item_id]] for item_id in sorted(rows)]


def snapshot_hash(snapshot: list[list[Any]]) -> str:
    """A stable digest of a frozen snapshot."""
    return hashlib.sha256(json.dumps(snapshot, separators=(",", ":")).encode()).hexdigest()


def training_run_start(
    *, project: Project, trigger: str, params: dict[str, Any] | None = None, actor=None
) -> TrainingRun:
    """Create a queued run with a frozen snapshot; refuses a second active run per project."""
    snapshot = snapshot_freeze(project=project)
    if len(snapshot) < 10:
        raise ValidationError(f"{project.name} has only {len(snapshot)} labeled items to train on")
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(
                project=project,
                trigger=trigger,
                triggered_by=actor,
                params={**DEFAULT_PARAMS, **(params or {})},
                snapshot=snapshot,
                snapshot_hash=snapshot_hash(snapshot),
            )
    except IntegrityError:
        raise ValidationError(
            f"A training run for {project.name} is already queued or running; "
            "wait for it to finish or cancel it."
        )


def _log(run_id: int, line: str) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    TrainingRun.objects.filter(pk=run_id).update(log=F("log") + f"{stamp} {line}\n")


def _progress_writer(run_id: int, echo: Callable[[str], None] | None) -> Callable[[Any], None]:
    last = {"t": 0.0}

    def on_progress(progress: Any) -> None:
        now = time.monotonic()
        if now - last["t"] < 1.0 and progress.phase != "done":
            return
        last["t"] = now
        detail = {
            "epoch": progress.epoch,
            "epochs": progress.epochs,
            "batch": progress.batch,
            "batches": progress.batches,
            "train_loss": progress.train_loss,
            "valid_loss": progress.valid_loss,
            "metrics": progress.metrics,
            "eta_seconds": progress.eta_seconds,
            "phase": progress.phase,
        }
        TrainingRun.objects.filter(pk=run_id).update(
            progress=progress.fraction, progress_detail=detail, heartbeat_at=timezone.now()
        )
        if echo is not None:
            echo(
                f"epoch {progress.epoch + 1}/{progress.epochs} batch {progress.batch}/"
                f"{progress.batches} ({progress.fraction:.0%})"
            )

    return on_progress


def training_run_execute(
    *, run_id: int, echo: Callable[[str], None] | None = None
) -> ModelVersion | None:
    """Train a queued run and register its model version; a failure marks the run failed."""
    claimed = TrainingRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    if not claimed:
        logger.info("training.skip run=%s (not queued)", run_id)
        return None
    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    _log(run_id, f"started: {len(run.snapshot)} items, params {run.params}")
    try:
        version = _train_and_register(run=run, echo=echo)
    except Exception as exc:  # noqa: BLE001 - any failure must end the run visibly, then re-raise
        TrainingRun.objects.filter(pk=run_id).update(
            state=RunState.FAILED,
            error=f"{exc.__class__.__name__}: {exc}",
            finished_at=timezone.now(),
        )
        _log(run_id, f"failed: {exc}")
        logger.exception("training.failed run=%s", run_id)
        raise
    _log(run_id, f"succeeded: model v{version.number}")
    return version


def _train_and_register(*, run: TrainingRun, echo: Callable[[str], None] | None) -> ModelVersion:
    items = Item.objects.in_bulk([item_id for item_id, _ in run.snapshot])
    records = [
        ml.TrainingRecord(path=items[item_id].image.path, label=label, key=items[item_id].key)
        for item_id, label in run.snapshot
        if item_id in items
    ]
    dest = settings.ARTIFACTS_ROOT / run.project.slug / f"run-{run.pk}-{uuid.uuid4().hex[:8]}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    artifact = ml.train_and_save(
        records=records,
        params=run.params,
        dest=dest,
        dataset_hash=run.snapshot_hash,
        on_progress=_progress_writer(run.pk, echo),
        extra_metadata={"project": run.project.slug, "training_run": run.pk},
    )
    with transaction.atomic():
        version = services.model_version_register(
            project=run.project,
            artifact_path=str(artifact.path),
            sha256=artifact.sha256,
            metadata=artifact.metadata,
            training_run=run,
        )
        TrainingRun.objects.filter(pk=run.pk).update(
            state=RunState.SUCCEEDED,
            progress=1.0,
            metrics=version.metrics,
            finished_at=timezone.now(),
        )
    return version
