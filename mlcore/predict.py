"""Serving: a Predictor built from an artifact, in plain torch (no fastai, no pickles).

Preprocessing is `mlcore.images.Preprocessing`, the very function the validation DataLoader uses
(`mlcore.loaders.ModelResize` at the centre position, then the same normalisation).

The engine (issue 17): images are decoded and resized per image (PIL, as in training), then each
chunk is one uint8 NxHxWx3 array, copied to the device as uint8 (pinned, non-blocking on CUDA)
and normalised there in one batch op; the forward runs channels_last under
`torch.inference_mode()` and, on CUDA, autocast (`mlcore.precision`); the kNN OOD score is one
matrix product on the model's device; softmax, scores, embeddings and image statistics are
whole-chunk numpy.
"""

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from mlcore import drift, ood
from mlcore.artifacts import (
    REFERENCE_FILE,
    WEIGHTS_FILE,
    Artifact,
    ArtifactError,
    load_artifact,
    load_tensors,
    trained_metadata,
)
from mlcore.calibration import softmax
from mlcore.images import (
    ImageLoadError,
    ImageSource,
    Preprocessing,
    describe_source,
    load_rgb,
    stack_views,
)
from mlcore.model import TrainedModel
from mlcore.nets import build_network, forward_with_features
from mlcore.precision import DevicePlan
from mlcore.reference import image_statistics_batch

logger = logging.getLogger(__name__)

TOP_K = 3


@dataclass
class PredictionResult:
    """One image's prediction; `ood_score` is `ood_scores[primary]` (knn by default)."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    top: list[tuple[str, float]]
    ood_score: float
    ood_scores: dict[str, float]
    is_ood: bool
    # For drift monitoring: the projected embedding and the image's statistics.
    embedding: list[float] | None = None
    image_stats: dict[str, float] | None = None

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        data = asdict(self)
        data["top"] = [list(pair) for pair in self.top]
        return data


@dataclass
class BatchOutputs:
    """Raw network outputs for a batch, plus the loaded RGB images (for statistics)."""

    logits: np.ndarray
    features: np.ndarray
    images: list[Image.Image]


def _load(source: ImageSource, index: int) -> Image.Image:
    try:
        return load_rgb(source)
    except ImageLoadError as exc:
        raise ImageLoadError(f"image #{index} ({describe_source(source)}): {exc}") from exc


def _network_from_artifact(artifact: Artifact) -> nn.Module:
    meta = artifact.metadata
    try:
        model = build_network(meta["arch"], len(meta["labels"]))
        model.load_state_dict(load_tensors(artifact, WEIGHTS_FILE), strict=True)
    except (RuntimeError, ValueError) as exc:
        raise ArtifactError(
            f"{artifact.path / WEIGHTS_FILE} does not fit arch {meta['arch']!r} with "
            f"{len(meta['labels'])} labels: {exc}"
        ) from exc
    return model


class Predictor:
    """Batched, calibrated predictions with OOD scores for one model version."""

    def __init__(
        self,
        model: nn.Module,
        *,
        labels: Sequence[str],
        preprocessing: Preprocessing,
        temperature: float = 1.0,
        ood_thresholds: dict[str, float] | None = None,
        ood_config: dict | None = None,
        knn_bank: torch.Tensor | None = None,
        metadata: dict | None = None,
        sha256: str = "",
        device: str = "cpu",
        precision: str = "auto",
    ):
        self.labels = list(labels)
        self.preprocessing = preprocessing
        self.temperature = float(temperature)
        self.ood_thresholds = dict(ood_thresholds or {})
        self.ood_config = dict(ood_config or {})
        self.metadata = metadata or {}
        self.sha256 = sha256
        self.plan = DevicePlan.for_device(device, precision=precision)
        self.device = self.plan.device
        self.knn_bank = knn_bank if knn_bank is not None else torch.zeros(0, 1)
        self.model = model.to(self.device).eval()
        # channels_last on the CPU too: oneDNN's convolutions run ~1.2-1.6x faster in it for the
        # demo's resnet18 (bench.inference_engine), and the normalised uint8 batch is already
        # laid out that way, so no copy is made.
        self.model = self.model.to(memory_format=torch.channels_last)
        self._pinned = threading.local()  # one pinned host buffer per thread (GPU only)

    @property
    def knn_bank(self) -> torch.Tensor:
        """Normalised training embeddings (as stored, float16) for the kNN OOD score."""
        return self._knn_bank

    @knn_bank.setter
    def knn_bank(self, bank: torch.Tensor) -> None:
        self._knn_bank = bank.detach().cpu()
        # Converted once, not per prediction, and kept where the embeddings are computed.
        device = getattr(self, "device", torch.device("cpu"))
        self._knn_bank_f32 = self._knn_bank.float().to(device)

    @classmethod
    def from_artifact(
        cls, path: str | Path, *, device: str = "cpu", precision: str = "auto"
    ) -> "Predictor":
        """Load a verified artifact (ArtifactError when anything does not match)."""
        artifact = load_artifact(path)
        meta = artifact.metadata
        model = _network_from_artifact(artifact)
        bank = None
        if REFERENCE_FILE in artifact.manifest["files"]:
            bank = load_tensors(artifact, REFERENCE_FILE).get("knn_bank")
        logger.info("predict.loaded sha256=%s device=%s", artifact.sha256, device)
        return cls(
            model,
            labels=meta["labels"],
            preprocessing=Preprocessing.from_dict(meta),
            temperature=meta.get("temperature", 1.0),
            ood_thresholds=meta.get("ood_thresholds"),
            ood_config=meta.get("ood"),
            knn_bank=bank,
            metadata=meta,
            sha256=artifact.sha256,
            device=device,
            precision=precision,
        )

    @classmethod
    def from_trained(cls, trained: TrainedModel, *, device: str | None = None) -> "Predictor":
        """Wrap an in-memory trained model (same outputs as its saved artifact)."""
        device = device or str(next(trained.model.parameters()).device)
        return cls(
            trained.model,
            labels=trained.labels,
            preprocessing=trained.preprocessing,
            temperature=trained.temperature,
            ood_thresholds=trained.ood_thresholds,
            ood_config=trained.ood_config,
            knn_bank=trained.knn_bank,
            metadata=trained_metadata(trained),
            device=device,
        )

    def model_view(self, image: ImageSource) -> Image.Image:
        """Exactly what the model sees for this image (after resize/crop/pad), as RGB."""
        return self.preprocessing.view(image)

    def _host_batch(self, views: Sequence[Image.Image]) -> torch.Tensor:
        """The chunk as one uint8 NxHxWx3 tensor; on CUDA in a reused pinned buffer."""
        if not self.plan.on_gpu:
            return torch.from_numpy(stack_views(views))
        size = self.preprocessing.size
        buffer = getattr(self._pinned, "buffer", None)
        if buffer is None or buffer.shape[0] < len(views) or buffer.shape[1:3] != (size, size):
            buffer = torch.empty((len(views), size, size, 3), dtype=torch.uint8, pin_memory=True)
            self._pinned.buffer = buffer
        # Safe to overwrite: the previous chunk's copy finished when its outputs came back.
        stack_views(views, out=buffer.numpy()[: len(views)])
        return buffer[: len(views)]

    def _forward(self, rgb: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, embeddings) of one chunk as float32 tensors on the model's device."""
        host = self._host_batch(self.preprocessing.views(rgb))
        x = self.preprocessing.normalize(host.to(self.device, non_blocking=self.plan.on_gpu))
        with torch.inference_mode(), self.plan.autocast():
            logits, features = forward_with_features(self.model, x)
        return logits.float(), features.float()

    def _chunks(
        self, images: Sequence[ImageSource], batch_size: int | None
    ) -> Iterator[tuple[list[Image.Image], torch.Tensor, torch.Tensor]]:
        """(decoded RGB images, logits, embeddings on the device) chunk by chunk."""
        size = batch_size or self.plan.batch_size
        for start in range(0, len(images), size):
            chunk = images[start : start + size]
            rgb = [_load(source, start + i) for i, source in enumerate(chunk)]
            yield rgb, *self._forward(rgb)

    def iter_outputs(
        self, images: Sequence[ImageSource], *, batch_size: int | None = None
    ) -> Iterator[BatchOutputs]:
        """Yield logits and embeddings batch by batch (the device's batch size by default)."""
        for rgb, logits, features in self._chunks(images, batch_size):
            yield BatchOutputs(logits.cpu().numpy(), features.cpu().numpy(), rgb)

    def outputs(
        self, images: Sequence[ImageSource], *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(logits N x C, embeddings N x D) for all images."""
        batches = list(self.iter_outputs(images, batch_size=batch_size))
        if not batches:
            return np.zeros((0, len(self.labels))), np.zeros((0, self.knn_bank.shape[1]))
        return (
            np.concatenate([b.logits for b in batches]),
            np.concatenate([b.features for b in batches]),
        )

    def features(
        self, images: Sequence[ImageSource], *, batch_size: int | None = None
    ) -> np.ndarray:
        """Penultimate-layer embeddings (N x D), for drift monitoring."""
        return self.outputs(images, batch_size=batch_size)[1]

    def scores(
        self, logits: np.ndarray, features: np.ndarray | torch.Tensor
    ) -> tuple[np.ndarray, dict]:
        """Calibrated probabilities and every OOD score (kNN on the bank's device)."""
        probs = softmax(logits, self.temperature)
        k = int(self.ood_config.get("knn_k", ood.DEFAULT_KNN_K))
        scores = {
            "msp": ood.msp_score(probs),
            "energy": ood.energy_score(logits),
            "knn": ood.knn_score(features, self._knn_bank_f32, k=k),
        }
        return probs, scores

    def predict(
        self, images: Sequence[ImageSource], *, batch_size: int | None = None
    ) -> list[PredictionResult]:
        """Predict a batch of images (PIL images, paths or bytes), in chunks of `batch_size`."""
        if isinstance(images, Image.Image | str | bytes | os.PathLike):
            raise TypeError("predict() takes a sequence of images; wrap a single image in a list")
        results: list[PredictionResult] = []
        for rgb, logits, features in self._chunks(images, batch_size):
            probs, scores = self.scores(logits.cpu().numpy(), features)
            features_np = features.cpu().numpy()
            embeddings = drift.project_embeddings(features_np).round(5).tolist()
            stats = image_statistics_batch(rgb)
            results.extend(self._results(probs, scores, embeddings, stats))
        return results

    def _results(
        self,
        probs: np.ndarray,
        scores: dict[str, np.ndarray],
        embeddings: list[list[float]],
        stats: list[dict[str, float]],
    ) -> list[PredictionResult]:
        primary = self.ood_config.get("primary_score", ood.DEFAULT_PRIMARY_SCORE)
        threshold = self.ood_thresholds.get(primary)
        labels = self.labels
        order = np.argsort(-probs, axis=1)[:, :TOP_K].tolist()
        names = list(scores)
        score_rows = np.stack([np.asarray(scores[n], dtype=np.float64) for n in names], 1).tolist()
        results = []
        for row, top, score_row, embedding, stat in zip(
            probs.tolist(), order, score_rows, embeddings, stats, strict=True
        ):
            row_scores = dict(zip(names, score_row, strict=True))
            results.append(
                PredictionResult(
                    label=labels[top[0]],
                    confidence=row[top[0]],
                    probabilities=dict(zip(labels, row, strict=True)),
                    top=[(labels[j], row[j]) for j in top],
                    ood_score=row_scores[primary],
                    ood_scores=row_scores,
                    is_ood=threshold is not None and row_scores[primary] > threshold,
                    embedding=embedding,
                    image_stats=stat,
                )
            )
        return results
