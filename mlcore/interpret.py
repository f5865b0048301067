"""Interpretation on any (actual, predicted) label pairs: validation or production decisions.

Every function takes plain label lists, so the same code explains a validation split and the
(prediction, human label) pairs collected in review.
"""

import io
import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

logger = logging.getLogger(__name__)

_EPS = 1e-12


def _indices(values: Sequence[str], labels: Sequence[str], what: str) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({v for v in values if v not in index})
    if unknown:
        raise ValueError(f"{what} contains labels not in the label list: {unknown[:5]}")
    return np.array([index[v] for v in values], dtype=np.int64)


def confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> np.ndarray:
    """Counts with rows = actual label, columns = predicted label, in `labels` order."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} actual labels but {len(y_pred)} predictions")
    actual = _indices(y_true, labels, "y_true")
    predicted = _indices(y_pred, labels, "y_pred")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (actual, predicted), 1)
    return matrix


def most_confused(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], *, min_count: int = 1
) -> list[tuple[str, str, int]]:
    """(actual, predicted, count) for off-diagonal cells with >= min_count, most frequent first."""
    matrix = confusion_matrix(y_true, y_pred, labels)
    pairs = [
        (labels[i], labels[j], int(matrix[i, j]))
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j and matrix[i, j] >= min_count
    ]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))


def per_class_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1, support (actual count) and predicted count for every label."""
    matrix = confusion_matrix(y_true, y_pred, labels)
    report = {}
    for i, label in enumerate(labels):
        tp, support, predicted = matrix[i, i], matrix[i].sum(), matrix[:, i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[label] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(support),
            "predicted": int(predicted),
        }
    return report


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Share of matching pairs (0.0 for no pairs)."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} actual labels but {len(y_pred)} predictions")
    if not y_true:
        return 0.0
    return float(np.mean([a == p for a, p in zip(y_true, y_pred, strict=True)]))


def _probability_of(row: Mapping[str, float] | np.ndarray, label: str, labels) -> float:
    if isinstance(row, Mapping):
        return float(row.get(label, 0.0))
    return float(row[list(labels).index(label)])


def top_losses(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    probs: Sequence[Mapping[str, float]] | np.ndarray,
    labels: Sequence[str],
    *,
    k: int = 9,
) -> list[dict]:
    """The k items with the highest cross-entropy loss -log p(actual label), worst first."""
    if not len(y_true) == len(y_pred) == len(probs):
        raise ValueError("y_true, y_pred and probs must have the same length")
    rows = []
    for i, (actual, predicted) in enumerate(zip(y_true, y_pred, strict=True)):
        p_actual = _probability_of(probs[i], actual, labels)
        p_pred = _probability_of(probs[i], predicted, labels)
        loss = -math.log(max(p_actual, _EPS))
        rows.append(
            {
                "index": i,
                "actual": actual,
                "predicted": predicted,
                "loss": loss,
                "probability_actual": p_actual,
                "probability_predicted": p_pred,
            }
        )
    rows.sort(key=lambda r: (-r["loss"], r["index"]))
    return rows[:k]


def plot_confusion_matrix(
    matrix: np.ndarray,
    labels: Sequence[str],
    *,
    fmt: str = "png",
    title: str = "Confusion matrix",
    normalize: bool = False,
) -> bytes:
    """A readable confusion-matrix plot (counts in cells) as PNG or SVG bytes."""
    # Deferred: matplotlib is slow to import and only plotting needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', got {fmt!r}")
    matrix = np.asarray(matrix)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    # Big enough to read every count at the size the run page shows it (issue 20, point 6):
    # ~0.8 inch per class at 110 dpi, and type that shrinks only for many classes.
    n = len(labels)
    side = max(5.0, 0.8 * n + 2.5)
    cell_font = 15 if n <= 10 else 12 if n <= 20 else 9
    fig = Figure(figsize=(side, side), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(shown, cmap="Blues", vmin=0)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("Predicted", fontsize=13)
    ax.set_ylabel("Actual", fontsize=13)
    ax.set_title(title, fontsize=14)
    rotation = 90 if max(map(len, labels), default=0) > 3 else 0
    ax.set_xticklabels(labels, rotation=rotation, fontsize=12)
    ax.set_yticklabels(labels, fontsize=12)
    peak = shown.max() if shown.size else 0
    for (i, j), value in np.ndenumerate(shown):
        text = f"{value:.2f}" if normalize else str(int(value))
        color = "white" if peak and value > peak / 2 else "black"
        ax.text(j, i, text, ha="center", va="center", color=color, fontsize=cell_font)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue()
