"""The drift reference stored in an artifact, and reading it back as a `drift.Reference`.

New artifacts keep a sample of the validation split (held out from training): normalised
penultimate embeddings, calibrated confidences and per-image statistics as tensors in
reference.safetensors, plus the predicted-label counts and the out-of-domain rate in
metadata["reference_stats"]["drift"]. Artifacts written before this existed still load: their
embedding reference falls back to the kNN bank (training embeddings), confidences to the stored
histogram and image statistics to the stored means (see `reference_from_artifact`).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from mlcore import drift
from mlcore.artifacts import REFERENCE_FILE, Artifact, load_tensors
from mlcore.ood import normalize_features

logger = logging.getLogger(__name__)

MAX_REFERENCE_ITEMS = 1000
EMBEDDINGS_KEY = "drift_embeddings"
CONFIDENCES_KEY = "drift_confidences"
IMAGE_STATS_KEY = "drift_image_stats"


def build_drift_reference(
    *,
    features: np.ndarray,
    probs: np.ndarray,
    is_ood: np.ndarray,
    image_stats: list[dict[str, float]],
    labels: list[str],
    seed: int = 0,
    max_items: int = MAX_REFERENCE_ITEMS,
) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON part, tensors) of the drift reference from validation outputs."""
    n = len(probs)
    rng = np.random.default_rng(seed)
    keep = np.arange(n) if n <= max_items else np.sort(rng.choice(n, max_items, replace=False))
    predicted = probs.argmax(axis=1)
    names = sorted(image_stats[0]) if image_stats else []
    table = np.array([[row[name] for name in names] for row in image_stats], dtype=np.float32)
    tensors = {
        EMBEDDINGS_KEY: normalize_features(features[keep]).half(),
        CONFIDENCES_KEY: torch.as_tensor(probs.max(axis=1)[keep], dtype=torch.float32),
        IMAGE_STATS_KEY: torch.as_tensor(table[keep] if len(table) else np.zeros((0, 0))),
    }
    summary = {
        "source": "validation",
        "n": int(n),
        "sample": int(len(keep)),
        "prediction_counts": {label: int((predicted == i).sum()) for i, label in enumerate(labels)},
        "ood_rate": float(np.asarray(is_ood, dtype=bool).mean()) if n else 0.0,
        "image_stat_names": names,
        "embedding_projection": {
            "method": "gaussian_random_projection",
            "dim": drift.PROJECTION_DIM,
            "seed": drift.PROJECTION_SEED,
        },
    }
    return summary, tensors


def _legacy_counts(meta: dict, labels: list[str]) -> np.ndarray:
    ref = meta.get("reference_stats", {})
    shares = ref.get("valid_prediction_distribution") or ref.get("label_distribution") or {}
    n = int(meta.get("n_valid") or 0)
    return np.array([shares.get(label, 0.0) * n for label in labels])


def reference_from_artifact(artifact: Artifact) -> drift.Reference:
    """The drift reference of a verified artifact (old artifacts: the best available fallback)."""
    meta = artifact.metadata
    labels = list(meta["labels"])
    ref_stats = meta.get("reference_stats", {}) or {}
    summary = ref_stats.get("drift")
    tensors = {}
    if REFERENCE_FILE in artifact.manifest.get("files", {}):
        tensors = load_tensors(artifact, REFERENCE_FILE)
    if summary and EMBEDDINGS_KEY in tensors:
        stats = tensors[IMAGE_STATS_KEY].float().numpy()
        names = summary["image_stat_names"]
        return drift.Reference(
            labels=labels,
            label_counts=np.array([summary["prediction_counts"].get(x, 0) for x in labels]),
            ood_rate=float(summary["ood_rate"]),
            n_ood=int(summary["n"]),
            confidences=tensors[CONFIDENCES_KEY].float().numpy(),
            embeddings=drift.project_embeddings(tensors[EMBEDDINGS_KEY].float().numpy()),
            image_stats={name: stats[:, i] for i, name in enumerate(names)},
            source="validation",
        )
    logger.info("drift.reference_legacy sha256=%s", artifact.sha256[:12])
    primary = (meta.get("ood") or {}).get("primary_score", "knn")
    acceptance = (meta.get("ood") or {}).get("validation_acceptance", {}).get(primary, 0.95)
    bank = tensors.get("knn_bank")
    return drift.Reference(
        labels=labels,
        label_counts=_legacy_counts(meta, labels),
        ood_rate=1.0 - float(acceptance),
        n_ood=int(meta.get("n_valid") or 0),
        confidence_histogram=ref_stats.get("confidence_histogram"),
        embeddings=drift.project_embeddings(bank.float().numpy() if bank is not None else None),
        image_summary=ref_stats.get("image_stats", {}),
        source="training kNN bank (artifact predates the validation drift reference)",
    )
