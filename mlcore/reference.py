"""Reference statistics of a training set, the baseline that drift monitoring compares against.

Pure functions over plain arrays and PIL images; results are JSON-serialisable dicts.
"""

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

CONFIDENCE_BINS = 10
_THUMBNAIL = (64, 64)
_GRAYSCALE_TOLERANCE = 8  # max channel spread (0..255) for a pixel to count as gray


def label_distribution(labels: Iterable[str], vocab: Sequence[str]) -> dict[str, float]:
    """Share of each label in `vocab` (zeros included)."""
    counts = Counter(labels)
    total = sum(counts[label] for label in vocab)
    return {label: (counts[label] / total if total else 0.0) for label in vocab}


def confidence_histogram(confidences: np.ndarray, bins: int = CONFIDENCE_BINS) -> dict:
    """Histogram of confidences over [0, 1] as shares, with the bin edges."""
    values = np.asarray(confidences, dtype=np.float64)
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    shares = counts / counts.sum() if counts.sum() else counts.astype(float)
    return {"edges": edges.round(6).tolist(), "shares": shares.tolist(), "n": int(len(values))}


def feature_summary(features: np.ndarray) -> dict:
    """Mean and per-dimension variance of embeddings (the full sample lives in the artifact)."""
    x = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1) if len(x) else np.zeros(0)
    return {
        "n": int(len(x)),
        "dim": int(x.shape[1]) if x.ndim == 2 else 0,
        "mean": x.mean(axis=0).round(6).tolist() if len(x) else [],
        "var": x.var(axis=0).round(6).tolist() if len(x) else [],
        "norm_mean": float(norms.mean()) if len(x) else 0.0,
        "norm_std": float(norms.std()) if len(x) else 0.0,
    }


def image_statistics(img: Image.Image) -> dict[str, float]:
    """Brightness, saturation and gray share (0..1) of an RGB image, plus its size."""
    small = img.copy()
    small.thumbnail(_THUMBNAIL)
    rgb = np.asarray(small, dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
    return {
        "brightness": float(np.asarray(small.convert("L"), dtype=np.float64).mean() / 255.0),
        "saturation": float(hsv[..., 1].mean() / 255.0),
        "gray_share": float((spread <= _GRAYSCALE_TOLERANCE).mean()),
        "width": float(img.width),
        "height": float(img.height),
    }


def summarize_image_statistics(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, std and quartiles of each per-image statistic."""
    if not rows:
        return {}
    summary = {}
    for name in rows[0]:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
        summary[name] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "p25": float(q25),
            "p50": float(q50),
            "p75": float(q75),
        }
    return summary
