"""The one bridge between reviewapp and mlcore: loading predictors, training, demo data.

Predictors are loaded once per process and cached by model version sha256; nothing is loaded at
import time. The web process never loads fastai: ``mlcore.train`` (the fastai training loop) is
imported only inside ``train_and_save``, which runs on the training worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from config.heap import long_lived_freeze
from mlcore import artifacts as ml_artifacts
from mlcore import data as ml_data
from mlcore import demo as ml_demo
from mlcore import drift as ml_drift
from mlcore import drift_reference as ml_drift_reference
from mlcore import images as ml_images
from mlcore import interpret as ml_interpret
from mlcore import model as ml_model
from mlcore import nets as ml_nets
from mlcore import predict as ml_predict
from mlcore import shifts as ml_shifts
from mlcore import video as ml_video

logger = logging.getLogger(__name__)

_PREDICTORS: dict[str, ml_predict.Predictor] = {}
_PREDICTORS_LOCK = threading.Lock()
_DRIFT_REFERENCES: dict[str, ml_drift.Reference] = {}

ImageLoadError = ml_data.ImageLoadError
ArtifactError = ml_artifacts.ArtifactError
PredictionResult = ml_predict.PredictionResult
VideoError = ml_video.VideoError
Clip = ml_video.Clip
clip_sniff = ml_video.sniff
clip_aggregate = ml_video.clip_aggregate
clip_frame_summaries = ml_video.frame_summaries
TrainingCancelled = ml_model.TrainingCancelled


@dataclass(frozen=True)
class TrainingRecord:
    """An item to train on: image path, label, stable key (and the clip it is a frame of)."""

    path: str
    label: str
    key: str
    group: str = ""

    @property
    def split_key(self) -> str:
        """What the split hashes: the clip's key for a frame, else the item's key."""
        return self.group or self.key


def load_image(source: Any):
    """Decode an image fully into RGB, raising ImageLoadError with a clear message."""
    return ml_data.load_rgb(source)


def clip_decode(*, data: bytes, scheme: str, frames: int, fps: float) -> ml_video.Clip:
    """Decode a clip within the configured limits and sample its frames; raises VideoError."""
    limits = ml_video.Limits(
        max_seconds=settings.HANDOFF_VIDEO_MAX_SECONDS,
        max_pixels=settings.HANDOFF_VIDEO_MAX_PIXELS,
        max_frames=settings.HANDOFF_VIDEO_MAX_FRAMES,
    )
    sampling = ml_video.Sampling(scheme=scheme, frames=frames, fps=fps)
    return ml_video.clip_decode(data, sampling=sampling, limits=limits)


def get_predictor(*, artifact_path: str, sha256: str) -> ml_predict.Predictor:
    """Return the process-wide predictor for a model version, loading it on first use."""
    with _PREDICTORS_LOCK:
        predictor = _PREDICTORS.get(sha256)
        if predictor is not None:
            return predictor
        logger.info("predictor.load sha256=%s path=%s", sha256[:12], artifact_path)
        predictor = ml_predict.Predictor.from_artifact(
            artifact_path, device=settings.HANDOFF_PREDICT_DEVICE
        )
        if predictor.sha256 != sha256:
            raise ArtifactError(
                f"artifact at {artifact_path} has sha256 {predictor.sha256}, "
                f"but the model version expects {sha256}"
            )
        _PREDICTORS[sha256] = predictor
    # After a load only, in server processes only (config/heap.py); outside the lock, which
    # other threads may be waiting on for a model already loaded.
    long_lived_freeze(f"model {sha256[:12]}")
    return predictor


def forward_threads_set(threads: int) -> None:
    """This thread's CPU forwards run on ``threads`` intra-op threads (0 leaves torch's count)."""
    ml_model.cpu_threads_set(threads)


def predict_images(
    *, artifact_path: str, sha256: str, images: Sequence[Any]
) -> list[ml_predict.PredictionResult]:
    """Predict a batch of images with the given model version."""
    predictor = get_predictor(artifact_path=artifact_path, sha256=sha256)
    return predictor.predict(list(images))


def render_model_view(*, artifact_path: str, sha256: str, image: Any):
    """Return the image exactly as the model saw it (after resize/crop/pad)."""
    return get_predictor(artifact_path=artifact_path, sha256=sha256).model_view(image)


def train_and_save(
    *,
    records: Sequence[TrainingRecord],
    params: dict[str, Any],
    dest: Path,
    dataset_hash: str,
    on_progress: Callable[[Any], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> ml_artifacts.Artifact:
    """Train a model on records with params (TrainConfig fields) and save it atomically."""
    # Deferred: mlcore.train loads fastai, which only the training worker needs.
    from mlcore import train as ml_train

    config = ml_model.TrainConfig(**params)
    ml_records = [
        ml_data.Record(path=r.path, label=r.label, key=r.key, group=r.group) for r in records
    ]
    trained = ml_train.train(
        ml_records,
        config,
        on_progress=on_progress,
        should_cancel=should_cancel,
        dataset_hash=dataset_hash,
    )
    return ml_artifacts.save_artifact(trained, dest, extra_metadata=extra_metadata)


def render_demo_digits(dest_dir: Path) -> list[TrainingRecord]:
    """Render scikit-learn's digits to PNG files and return them as records."""
    return [
        TrainingRecord(path=str(r.path), label=r.label, key=r.key)
        for r in ml_demo.render_digits(dest_dir)
    ]


def is_validation(key: str, *, seed: int, valid_pct: float) -> bool:
    """True when the item with this key is on the validation side of the stable split."""
    return ml_data.is_validation(key, seed=seed, valid_pct=valid_pct)


def training_device(requested: str | None) -> str:
    """The device a training run uses: the requested one, else CUDA when available, else CPU."""
    return str(ml_model.resolve_device(requested or None))


def predict_paths(
    *, artifact_path: str, paths: Sequence[str], device: str = "cpu"
) -> tuple[list[str], list[dict[str, float]]]:
    """(predicted labels, calibrated probabilities) of a freshly loaded artifact on image files."""
    predictor = ml_predict.Predictor.from_artifact(artifact_path, device=device)
    results = predictor.predict(list(paths), batch_size=128)
    return [r.label for r in results], [r.probabilities for r in results]


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> list:
    """Counts, rows = actual, columns = predicted, as nested lists."""
    return ml_interpret.confusion_matrix(y_true, y_pred, labels).tolist()


def top_losses(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    probs: Sequence[dict],
    labels: Sequence[str],
    k: int,
) -> list[dict]:
    """The k worst items by -log p(actual label), with their index into the inputs."""
    return ml_interpret.top_losses(y_true, y_pred, probs, labels, k=k)


def confusion_png(*, matrix: list, labels: Sequence[str], title: str) -> bytes:
    """The confusion matrix as a PNG picture."""

    return ml_interpret.plot_confusion_matrix(np.asarray(matrix), list(labels), title=title)


TRAINING_CHOICES: dict[str, tuple[str, ...]] = {
    "arch": tuple(ml_nets.ARCHITECTURES),
    "resize_method": tuple(ml_images.RESIZE_METHODS),
    "augment": tuple(ml_data.AUGMENT_PRESETS),
}


DriftWindow = ml_drift.Window
DriftTestResult = ml_drift.TestResult
DRIFT_STATISTICS = ml_drift.STATISTICS
DRIFT_PROJECTION_DIM = ml_drift.PROJECTION_DIM
drift_run_tests = ml_drift.run_tests
drift_alpha_per_test = ml_drift.alpha_per_test
drift_onset_index = ml_drift.onset_index
drift_example_indices = ml_drift.example_indices
json_safe = ml_artifacts.json_safe


def drift_reference(*, artifact_path: str, sha256: str) -> ml_drift.Reference:
    """The drift reference of a model version, loaded once per process."""
    with _PREDICTORS_LOCK:
        reference = _DRIFT_REFERENCES.get(sha256)
        if reference is None:
            artifact = ml_artifacts.load_artifact(artifact_path)
            if artifact.sha256 != sha256:
                raise ArtifactError(
                    f"artifact at {artifact_path} has sha256 {artifact.sha256}, "
                    f"but the model version expects {sha256}"
                )
            reference = ml_drift_reference.reference_from_artifact(artifact)
            _DRIFT_REFERENCES[sha256] = reference
        return reference


# simulate_stream's shift names -> mlcore.shifts (the digits are already gray, so "grayscale"
# is the washed-out grayscale camera: gray haze at a quarter of the contrast).
STREAM_SHIFTS = {"night": "night", "grayscale": "washed", "lowres": "lowres", "rotate": "rotate"}


def shift_image(image: Any, shift: str):
    """One image under a named simulate_stream shift (see STREAM_SHIFTS)."""
    if shift not in STREAM_SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; choose one of {sorted(STREAM_SHIFTS)}")
    return ml_shifts.NEAR_SHIFTS[STREAM_SHIFTS[shift]](image)


class BundleExportError(Exception):
    """An edge bundle could not be exported; ``parity`` holds the cases when parity failed."""

    def __init__(self, message: str, *, parity: dict | None = None):
        super().__init__(message)
        self.parity = parity


@dataclass(frozen=True)
class BundleExport:
    """A written edge bundle: its folder, manifest sha256, size and parity summary."""

    path: str
    sha256: str
    size_bytes: int
    parity: dict


def bundle_export(
    *, artifact_path: str, sha256: str, dest: Path, image_paths: Sequence[str], policy: dict
) -> BundleExport:
    """Export a model version to an ONNX edge bundle, refused unless onnxruntime matches torch."""
    # Deferred: mlcore.export loads the ONNX exporter and onnxruntime, which only an export needs.
    from mlcore import export as ml_export

    artifact = ml_artifacts.load_artifact(artifact_path)
    if artifact.sha256 != sha256:
        raise ArtifactError(
            f"artifact at {artifact_path} has sha256 {artifact.sha256}, "
            f"but the model version expects {sha256}"
        )
    try:
        bundle = ml_export.bundle_export(
            artifact_path=artifact_path, dest=dest, images=list(image_paths), policy=policy
        )
    except ml_export.ParityError as exc:
        raise BundleExportError(str(exc), parity=exc.report.summary()) from exc
    except ml_export.ExportError as exc:
        raise BundleExportError(str(exc)) from exc
    return BundleExport(
        path=str(bundle.path),
        sha256=bundle.sha256,
        size_bytes=bundle.size_bytes,
        parity=bundle.parity,
    )
