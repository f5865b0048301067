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


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk's colourfulness M (0 for gray images), scaled by 1/255.

    https://doi.org/10.1117/12.477378
    """
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float((spread + 0.3 * mean) / 255.0)


def effective_resolution(gray: np.ndarray, full_side: int) -> float:
    """Pixels of detail across the short side: side x mean gradient / contrast, capped at the side.

    A heuristic: blur and up-scaling lower the gradients relative to the contrast, so a low
    resolution image scaled back to its original size still scores low.
    """
    g = gray.astype(np.float64) / 255.0
    if min(g.shape) < 2:
        return float(min(g.shape))
    gradient = np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()
    detail = min(g.shape) * gradient / (g.std() + 1.0 / 255.0)
    return float(min(detail, full_side))


def image_statistics(img: Image.Image) -> dict[str, float]:
    """Per-image statistics for drift: brightness, contrast, colour, gray share, resolution."""
    small = img.copy()
    small.thumbnail(_THUMBNAIL)
    rgb = np.asarray(small, dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
    gray = np.asarray(small.convert("L"), dtype=np.float64)
    return {
        "brightness": float(gray.mean() / 255.0),
        "contrast": float(gray.std() / 255.0),
        "saturation": float(hsv[..., 1].mean() / 255.0),
        "colourfulness": colourfulness(rgb),
        "gray_share": float((spread <= _GRAYSCALE_TOLERANCE).mean()),
        "effective_resolution": effective_resolution(gray, min(img.width, img.height)),
        "width": float(img.width),
        "height": float(img.height),
    }


def _thumbnail_array(img: Image.Image) -> np.ndarray:
    """The RGB pixels `image_statistics` looks at: the image itself when it fits 64x64."""
    if img.width <= _THUMBNAIL[0] and img.height <= _THUMBNAIL[1]:
        return np.asarray(img)
    small = img.copy()
    small.thumbnail(_THUMBNAIL)
    return np.asarray(small)


def _saturation(spread: np.ndarray, top: np.ndarray) -> np.ndarray:
    """PIL's HSV saturation channel, (max - min) / max scaled to 0..255 and truncated."""
    ratio = spread.astype(np.float32) / np.maximum(top, 1).astype(np.float32)
    return np.floor(ratio * np.float32(255.0))


def _luma(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PIL's RGB -> L conversion (ITU-R 601-2 in 16-bit fixed point, rounded)."""
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.float64)


def _statistics_same_shape(rgb: np.ndarray, full_sides: np.ndarray) -> list[dict]:
    """`image_statistics` for N thumbnails of one shape (N x H x W x 3), whole-batch numpy.

    Channels are combined with elementwise maximum/minimum and pixels reduced along one
    contiguous axis: numpy's reductions over a length-3 last axis are many times slower.
    """
    n, h, w, _ = rgb.shape
    r, g, b = (rgb[..., i].reshape(n, h * w).astype(np.int32) for i in range(3))
    top, bottom = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    spread = top - bottom
    gray = _luma(r, g, b)
    rg, yb = (r - g).astype(np.float64), 0.5 * (r + g) - b
    colour = (
        np.sqrt(rg.std(axis=1) ** 2 + yb.std(axis=1) ** 2)
        + 0.3 * np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    ) / 255.0
    g01 = gray.reshape(n, h, w) / 255.0
    if min(h, w) < 2:
        resolution = np.full(n, float(min(h, w)))
    else:
        gradient = np.abs(np.diff(g01, axis=1)).mean(axis=(1, 2))
        gradient += np.abs(np.diff(g01, axis=2)).mean(axis=(1, 2))
        detail = min(h, w) * gradient / (g01.std(axis=(1, 2)) + 1.0 / 255.0)
        resolution = np.minimum(detail, full_sides)
    columns = {
        "brightness": gray.mean(axis=1) / 255.0,
        "contrast": gray.std(axis=1) / 255.0,
        "saturation": _saturation(spread, top).mean(axis=1) / 255.0,
        "colourfulness": colour,
        "gray_share": (spread <= _GRAYSCALE_TOLERANCE).mean(axis=1),
        "effective_resolution": resolution,
    }
    names = list(columns)
    rows = np.stack([columns[name] for name in names], axis=1).tolist()
    return [dict(zip(names, row, strict=True)) for row in rows]


def image_statistics_batch(images: Sequence[Image.Image]) -> list[dict[str, float]]:
    """`image_statistics` for many RGB images at once: one numpy pass per thumbnail shape.

    Equal to the per-image function within float rounding (tests/mlcore compare them).
    """
    thumbs = [_thumbnail_array(img) for img in images]
    results: list[dict[str, float] | None] = [None] * len(images)
    groups: dict[tuple, list[int]] = {}
    for i, thumb in enumerate(thumbs):
        groups.setdefault(thumb.shape, []).append(i)
    for indices in groups.values():
        sides = np.array([min(images[i].size) for i in indices], dtype=np.float64)
        rows = _statistics_same_shape(np.stack([thumbs[i] for i in indices]), sides)
        for i, row in zip(indices, rows, strict=True):
            row["width"], row["height"] = float(images[i].width), float(images[i].height)
            results[i] = row
    return results  # type: ignore[return-value]


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
