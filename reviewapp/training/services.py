"""Training runs: freeze a snapshot, execute it through mlcore, register the result.

``training_run_start`` freezes the dataset (item ids and labels) in the database at once;
``training_run_execute`` can then run anywhere (the Celery ``training`` worker, or the seed
command) and is idempotent: only a queued run moves to running, by a conditional update, and only
a still-running run may register its model. A run whose worker dies stops sending heartbeats and
is failed by ``training_runs_reap``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from reviewapp import jobs, ml
from reviewapp.models import (
    Item,
    ItemKind,
    ModelVersion,
    Project,
    RunState,
    RunTrigger,
    TrainingRun,
)
from reviewapp.rollout import versions
from reviewapp.training import evaluation
from reviewapp.training.snapshots import snapshot_freeze, snapshot_hash

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PARAMS",
    "snapshot_freeze",
    "snapshot_hash",
    "training_run_cancel",
    "training_run_execute",
    "training_run_request",
    "training_run_retry",
    "training_run_start",
    "training_runs_reap",
]

DEFAULT_PARAMS: dict[str, Any] = {"arch": "resnet18", "epochs": 3, "image_size": 32}
MIN_ITEMS = 10
HISTORY_POINTS = 400


class TrainingDataError(Exception):
    """An item of the snapshot cannot be used; the message names it."""


def _create_run(*, project: Project, fields: dict[str, Any]) -> TrainingRun:
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(project=project, **fields)
    except IntegrityError:
        raise ValidationError(
            f"A training run for {project.name} is already queued or running; "
            "wait for it to finish or cancel it."
        )


def training_run_start(
    *, project: Project, trigger: str, params: dict[str, Any] | None = None, actor=None
) -> TrainingRun:
    """Create a queued run with a frozen snapshot; refuses a second active run per project."""
    params = {**DEFAULT_PARAMS, **(params or {})}
    snapshot = snapshot_freeze(
        project=project, seed=int(params.get("seed", 42)), valid_pct=params.get("valid_pct", 0.2)
    )
    if len(snapshot.rows) < MIN_ITEMS:
        raise ValidationError(
            f"{project.name} has only {len(snapshot.rows)} labeled items to train on"
        )
    return _create_run(
        project=project,
        fields={
            "trigger": trigger,
            "triggered_by": actor,
            "params": params,
            "snapshot": snapshot.rows,
            "snapshot_hash": snapshot_hash(snapshot.rows),
            "snapshot_info": snapshot.info,
        },
    )


def _enqueue_on_commit(run_id: int) -> None:
    jobs.job_send_on_commit(jobs.TRAIN_MODEL, run_id)


def training_run_request(
    *, project: Project, trigger: str, params: dict[str, Any] | None = None, actor=None
) -> TrainingRun:
    """Start a run and hand it to the training worker once the transaction commits."""
    with transaction.atomic():
        run = training_run_start(project=project, trigger=trigger, params=params, actor=actor)
        _enqueue_on_commit(run.pk)
    logger.info("training.requested run=%s project=%s trigger=%s", run.pk, project.slug, trigger)
    return run


def training_run_retry(*, run: TrainingRun, actor=None) -> TrainingRun:
    """A fresh run from the same frozen snapshot and params as a failed or cancelled one."""
    if run.state not in (RunState.FAILED, RunState.CANCELLED):
        raise ValidationError("Only a failed or cancelled run can be retried.")
    with transaction.atomic():
        retry = _create_run(
            project=run.project,
            fields={
                "trigger": RunTrigger.RETRY,
                "triggered_by": actor,
                "params": run.params,
                "snapshot": run.snapshot,
                "snapshot_hash": run.snapshot_hash,
                "snapshot_info": run.snapshot_info,
                "retry_of": run,
            },
        )
        _enqueue_on_commit(retry.pk)
    return retry


def training_run_cancel(*, run: TrainingRun) -> str:
    """Cancel a queued run at once, or ask a running one to stop; returns the new state."""
    if TrainingRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(
        state=RunState.CANCELLED, finished_at=timezone.now(), cancel_requested=True
    ):
        _log(run.pk, "cancelled before it started")
        return RunState.CANCELLED
    if TrainingRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(cancel_requested=True):
        _log(run.pk, "cancel requested")
        return RunState.RUNNING
    raise ValidationError("This run has already finished.")


def training_runs_reap(*, stale_after: timedelta | None = None) -> list[int]:
    """Fail running runs whose worker stopped sending heartbeats (killed, OOM, machine gone)."""
    stale_after = stale_after or timedelta(seconds=settings.HANDOFF_TRAINING_STALE_SECONDS)
    cutoff = timezone.now() - stale_after
    reaped = []
    for run_id in TrainingRun.objects.filter(
        state=RunState.RUNNING, heartbeat_at__lt=cutoff
    ).values_list("pk", flat=True):
        message = (
            f"The worker stopped sending heartbeats for over {stale_after.total_seconds():.0f} s "
            "(killed, out of memory or machine gone); no model was registered."
        )
        if TrainingRun.objects.filter(pk=run_id, state=RunState.RUNNING).update(
            state=RunState.FAILED, error=message, finished_at=timezone.now()
        ):
            _log(run_id, f"failed: {message}")
            logger.warning("training.reaped run=%s", run_id)
            reaped.append(run_id)
    return reaped


def _log(run_id: int, line: str) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    TrainingRun.objects.filter(pk=run_id).update(
        log=Concat(F("log"), Value(f"{stamp} {line}\n"), output_field=TextField())
    )


def _progress_writer(run_id: int, echo: Callable[[str], None] | None) -> Callable[[Any], None]:
    state: dict[str, Any] = {"t": 0.0, "history": []}

    def on_progress(progress: Any) -> None:
        now = time.monotonic()
        if now - state["t"] < 1.0 and progress.phase != "done":
            return
        state["t"] = now
        history = state["history"]
        history.append([round(progress.fraction, 4), progress.train_loss, progress.valid_loss])
        del history[:-HISTORY_POINTS]
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
            "history": history,
        }
        TrainingRun.objects.filter(pk=run_id, state=RunState.RUNNING).update(
            progress=progress.fraction, progress_detail=detail, heartbeat_at=timezone.now()
        )
        if echo is not None:
            echo(
                f"epoch {progress.epoch + 1}/{progress.epochs} batch {progress.batch}/"
                f"{progress.batches} ({progress.fraction:.0%})"
            )

    return on_progress


def _cancel_checker(run_id: int) -> Callable[[], bool]:
    state = {"t": 0.0, "cancel": False}

    def should_cancel() -> bool:
        now = time.monotonic()
        if not state["cancel"] and now - state["t"] >= 1.0:
            state["t"] = now
            state["cancel"] = TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()
        return state["cancel"]

    return should_cancel


@contextlib.contextmanager
def _heartbeat(run_id: int) -> Iterator[None]:
    """Beat from a thread while the run works (lr_find, analysis and evaluation report nothing).

    Skipped inside an outer transaction, where the thread's own connection could not see the run.
    """
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()
    interval = settings.HANDOFF_TRAINING_HEARTBEAT_SECONDS

    def beat() -> None:
        try:
            while not stop.wait(interval):
                TrainingRun.objects.filter(pk=run_id, state=RunState.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"training-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 10)


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
        with _heartbeat(run_id):
            version = _train_and_register(run=run, echo=echo)
    except ml.TrainingCancelled:
        _finish(run_id, RunState.CANCELLED, "cancelled on request")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure must end the run visibly, then re-raise
        _finish(run_id, RunState.FAILED, f"{exc.__class__.__name__}: {exc}")
        logger.exception("training.failed run=%s", run_id)
        raise
    if version is None:
        _log(run_id, "finished after the run was ended elsewhere; nothing was registered")
        return None
    _log(run_id, f"succeeded: model v{version.number} registered as a candidate")
    return version


def _finish(run_id: int, state: str, message: str) -> None:
    error = "" if state == RunState.CANCELLED else message
    TrainingRun.objects.filter(pk=run_id, state=RunState.RUNNING).update(
        state=state, error=error, finished_at=timezone.now()
    )
    _log(run_id, f"{state}: {message}")


def _usable_records(*, run: TrainingRun) -> tuple[list[ml.TrainingRecord], list[int]]:
    """Records in snapshot order; unreadable images fail the run or are skipped, per setting.

    A clip gives one record per sampled frame, all in the clip's group: the split hashes the
    group, so the frames of one clip are all in training or all in validation.
    """
    items = Item.objects.in_bulk([item_id for item_id, _ in run.snapshot])
    records, ids, skipped = [], [], []
    for item_id, label in run.snapshot:
        item = items.get(item_id)
        if item is None:
            skipped.append(f"item {item_id}: deleted since the snapshot")
            continue
        paths = [default_storage.path(name) for name in item.frame_names] or [item.image.path]
        try:
            for path in paths:
                ml.load_image(path)
        except (ml.ImageLoadError, FileNotFoundError) as exc:
            if not run.project.training_skip_corrupt:
                raise TrainingDataError(f"item {item_id} ({item.key[:16]}): {exc}") from exc
            skipped.append(f"item {item_id} ({item.key[:16]}): {exc}")
            continue
        if item.kind == ItemKind.CLIP:  # one record per frame, split as one clip
            records.extend(
                ml.TrainingRecord(path=path, label=label, key=f"{item.key}#{i}", group=item.key)
                for i, path in enumerate(paths)
            )
        else:
            records.append(ml.TrainingRecord(path=paths[0], label=label, key=item.key))
        ids.extend([item_id] * len(paths))
    for line in skipped:
        _log(run.pk, f"skipped {line}")
    return records, ids


def _train_and_register(
    *, run: TrainingRun, echo: Callable[[str], None] | None
) -> ModelVersion | None:
    records, ids = _usable_records(run=run)
    params = {"device": settings.HANDOFF_TRAIN_DEVICE or None, **run.params}
    device = ml.training_device(params["device"])
    _log(run.pk, f"training {len(records)} items on {device}")
    dest = settings.ARTIFACTS_ROOT / run.project.slug / f"run-{run.pk}-{uuid.uuid4().hex[:8]}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    artifact = ml.train_and_save(
        records=records,
        params=params,
        dest=dest,
        dataset_hash=run.snapshot_hash,
        on_progress=_progress_writer(run.pk, echo),
        should_cancel=_cancel_checker(run.pk),
        extra_metadata={"project": run.project.slug, "training_run": run.pk},
    )
    _log(run.pk, f"trained: {artifact.metadata.get('metrics', {})}; evaluating beside the champion")
    split = run.snapshot_info.get("split", {"seed": 42, "valid_pct": 0.2})
    validation_ids = list(
        dict.fromkeys(  # a clip's frames share its item id: count the clip once
            item_id
            for item_id, record in zip(ids, records, strict=True)
            if ml.is_validation(record.split_key, seed=split["seed"], valid_pct=split["valid_pct"])
        )
    )
    report = evaluation.evaluate_candidate(
        run=run,
        artifact_path=str(artifact.path),
        labels=list(artifact.metadata["labels"]),
        validation_ids=validation_ids,
        device=device,
    )
    with transaction.atomic():
        finished = TrainingRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
            state=RunState.SUCCEEDED,
            progress=1.0,
            metrics=artifact.metadata.get("metrics", {}),
            evaluation=report,
            finished_at=timezone.now(),
        )
        if not finished:  # reaped or cancelled meanwhile: the champion and registry stay as is
            return None
        return versions.model_version_register(
            project=run.project,
            artifact_path=str(artifact.path),
            sha256=artifact.sha256,
            metadata=artifact.metadata,
            training_run=run,
        )
