"""Serving: a Predictor built from an artifact, in plain torch (no fastai, no pickles).

Preprocessing is `mlcore.images.Preprocessing`, the very function the validation DataLoader uses
(`mlcore.loaders.ModelResize` at the centre position, then the same normalisation).
"""

import logging
import os
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
from mlcore.images import ImageLoadError, ImageSource, Preprocessing, describe_source, load_rgb
from mlcore.model import TrainedModel
from mlcore.nets import build_network, forward_with_features
from mlcore.reference import image_statistics

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
    ):
        self.labels = list(labels)
        self.preprocessing = preprocessing
        self.temperature = float(temperature)
        self.ood_thresholds = dict(ood_thresholds or {})
        self.ood_config = dict(ood_config or {})
        self.metadata = metadata or {}
        self.sha256 = sha256
        self.device = torch.device(device)
        self.knn_bank = knn_bank if knn_bank is not None else torch.zeros(0, 1)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    @property
    def knn_bank(self) -> torch.Tensor:
        """Normalised training embeddings (as stored, float16) for the kNN OOD score."""
        return self._knn_bank

    @knn_bank.setter
    def knn_bank(self, bank: torch.Tensor) -> None:
        self._knn_bank = bank.detach().cpu()
        self._knn_bank_f32 = self._knn_bank.float()  # converted once, not per prediction

    @classmethod
    def from_artifact(cls, path: str | Path, *, device: str = "cpu") -> "Predictor":
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

    def iter_outputs(
        self, images: Sequence[ImageSource], *, batch_size: int = 64
    ) -> Iterator[BatchOutputs]:
        """Yield logits and embeddings batch by batch."""
        prep = self.preprocessing
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            rgb = [_load(source, start + i) for i, source in enumerate(chunk)]
            views = [prep.view(img) for img in rgb]
            x = prep.batch(views).to(self.device)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                logits, features = forward_with_features(self.model, x)
            yield BatchOutputs(logits.float().cpu().numpy(), features.float().cpu().numpy(), rgb)

    def outputs(
        self, images: Sequence[ImageSource], *, batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray]:
        """(logits N x C, embeddings N x D) for all images."""
        batches = list(self.iter_outputs(images, batch_size=batch_size))
        if not batches:
            return np.zeros((0, len(self.labels))), np.zeros((0, self.knn_bank.shape[1]))
        return (
            np.concatenate([b.logits for b in batches]),
            np.concatenate([b.features for b in batches]),
        )

    def features(self, images: Sequence[ImageSource], *, batch_size: int = 64) -> np.ndarray:
        """Penultimate-layer embeddings (N x D), for drift monitoring."""
        return self.outputs(images, batch_size=batch_size)[1]

    def scores(self, logits: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, dict]:
        """Calibrated probabilities and every OOD score for raw outputs."""
        probs = softmax(logits, self.temperature)
        k = int(self.ood_config.get("knn_k", ood.DEFAULT_KNN_K))
        scores = {
            "msp": ood.msp_score(probs),
            "energy": ood.energy_score(logits),
            "knn": ood.knn_score(features, self._knn_bank_f32, k=k),
        }
        return probs, scores

    def predict(
        self, images: Sequence[ImageSource], *, batch_size: int = 64
    ) -> list[PredictionResult]:
        """Predict a batch of images (PIL images, paths or bytes)."""
        if isinstance(images, Image.Image | str | bytes | os.PathLike):
            raise TypeError("predict() takes a sequence of images; wrap a single image in a list")
        results: list[PredictionResult] = []
        for batch in self.iter_outputs(images, batch_size=batch_size):
            probs, scores = self.scores(batch.logits, batch.features)
            batch_results = self._results(probs, scores)
            embeddings = drift.project_embeddings(batch.features).round(5).tolist()
            for result, embedding, img in zip(batch_results, embeddings, batch.images, strict=True):
                result.embedding = embedding
                result.image_stats = image_statistics(img)
            results.extend(batch_results)
        return results

    def _results(self, probs: np.ndarray, scores: dict[str, np.ndarray]) -> list[PredictionResult]:
        primary = self.ood_config.get("primary_score", ood.DEFAULT_PRIMARY_SCORE)
        threshold = self.ood_thresholds.get(primary)
        labels = self.labels
        order = np.argsort(-probs, axis=1)[:, :TOP_K]
        results = []
        for i, row in enumerate(probs):
            row_scores = {name: float(values[i]) for name, values in scores.items()}
            best = int(order[i, 0])
            results.append(
                PredictionResult(
                    label=labels[best],
                    confidence=float(row[best]),
                    probabilities={label: float(p) for label, p in zip(labels, row, strict=True)},
                    top=[(labels[j], float(row[j])) for j in order[i]],
                    ood_score=row_scores[primary],
                    ood_scores=row_scores,
                    is_ood=threshold is not None and row_scores[primary] > threshold,
                )
            )
        return results
