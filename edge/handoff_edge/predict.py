"""Prediction on the device: the server's preprocessing and scoring, in numpy + onnxruntime.

Each step mirrors mlcore (the server's Predictor) exactly; tests/edge compares the two on the
same images:

- loading: ``mlcore.images.load_rgb`` (EXIF orientation, 16-bit gray rescaled, alpha on white);
- resizing: ``mlcore.images.resize_for_model`` (squish / centre crop / pad, bilinear);
- normalising: (x / 255 - mean) / std in float32;
- calibration: softmax(logits / T) in float64 (``mlcore.calibration.softmax``);
- OOD: ``mlcore.ood`` msp, energy and the kNN distance to the exported training bank.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

from handoff_edge.bundle import Bundle
from handoff_edge.stats import image_statistics

logger = logging.getLogger(__name__)

_NUMPY_PAD_MODES = {"border": "edge", "reflection": "reflect"}
_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


@dataclass(frozen=True)
class EdgePrediction:
    """One image's calibrated prediction and OOD score, as the server's Predictor makes it."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    ood_score: float
    ood_scores: dict[str, float]
    is_ood: bool
    image_stats: dict[str, float] | None = None  # for the server's domain guard


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _HIGH_BIT_MODES:
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")
    if mode in ("P", "LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def image_load(source: str | os.PathLike | bytes | Image.Image) -> Image.Image:
    """A fully decoded RGB image from a path, bytes or PIL image."""
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    img = source if isinstance(source, Image.Image) else Image.open(source)
    img.load()
    img = ImageOps.exif_transpose(img) or img
    rgb = _to_rgb(img)
    rgb.load()
    return rgb


def image_resize(img: Image.Image, *, size: int, method: str, pad_mode: str) -> Image.Image:
    """Resize to size x size by squish, centre crop or pad (bilinear), as the server does."""
    w, h = img.size
    if method == "squish" or w == h:
        return img.resize((size, size), Image.Resampling.BILINEAR)
    if method == "crop":
        side = min(w, h)
        left, top = int(0.5 * (w - side)), int(0.5 * (h - side))
        box = (left, top, left + side, top + side)
        return img.resize((size, size), Image.Resampling.BILINEAR, box=box)
    scale = size / max(w, h)
    inner = img.resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR
    )
    iw, ih = inner.size
    left, top = (size - iw) // 2, (size - ih) // 2
    if pad_mode == "zeros":
        canvas = Image.new("RGB", (size, size), (0, 0, 0))
        canvas.paste(inner, (left, top))
        return canvas
    widths = ((top, size - ih - top), (left, size - iw - left), (0, 0))
    return Image.fromarray(np.pad(np.asarray(inner), widths, mode=_NUMPY_PAD_MODES[pad_mode]))


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _energy(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))


def _knn(features: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    queries = np.asarray(features, dtype=np.float32)
    norms = np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), np.float32(1e-12))
    queries = queries / norms
    if len(bank) == 0 or len(queries) == 0:
        return np.zeros(len(queries))
    k = max(1, min(k, len(bank)))
    similarity = queries @ bank.T
    kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(2.0 - 2.0 * kth.astype(np.float64), 0.0))


class EdgePredictor:
    """An onnxruntime session plus the bundle's preprocessing, calibration and OOD scoring."""

    def __init__(self, bundle: Bundle, *, threads: int = 1):
        meta = bundle.metadata
        prep = meta["preprocessing"]
        self.labels = bundle.labels
        self.size = int(prep["input_size"])
        self.method = prep.get("resize_method", "squish")
        self.pad_mode = prep.get("pad_mode", "zeros")
        norm = prep["normalization"]
        self.mean = np.asarray(norm["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(norm["std"], dtype=np.float32).reshape(1, 3, 1, 1)
        self.temperature = float(meta["calibration"]["temperature"])
        self.primary = meta["ood"]["primary_score"]
        self.knn_k = int(meta["ood"]["knn_k"])
        self.ood_threshold = meta["ood"]["thresholds"].get(self.primary)
        self.bank = bundle.knn_bank.astype(np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            bundle.onnx_model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = meta["model"]["input"]
        self.output_names = list(meta["model"]["outputs"])

    def batch_prepare(self, images: Sequence) -> np.ndarray:
        """The normalised float32 N x 3 x S x S batch the graph takes."""
        return self._batch([image_load(i) for i in images])

    def _batch(self, rgb: Sequence[Image.Image]) -> np.ndarray:
        views = [
            image_resize(i, size=self.size, method=self.method, pad_mode=self.pad_mode) for i in rgb
        ]
        x = np.stack([np.asarray(v, dtype=np.uint8) for v in views]).transpose(0, 3, 1, 2)
        return (x.astype(np.float32) / np.float32(255.0) - self.mean) / self.std

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits, features) of a prepared batch."""
        logits, features = self.session.run(self.output_names, {self.input_name: x})
        return logits, features

    def predict(self, images: Sequence, *, batch_size: int = 64) -> list[EdgePrediction]:
        """Calibrated predictions with OOD scores for images (paths, bytes or PIL images)."""
        results: list[EdgePrediction] = []
        for start in range(0, len(images), batch_size):
            rgb = [image_load(i) for i in images[start : start + batch_size]]
            logits, features = self.outputs(self._batch(rgb))
            probs = _softmax(logits, self.temperature)
            scores = {
                "msp": 1.0 - probs.max(axis=1),
                "energy": _energy(logits),
                "knn": _knn(features, self.bank, self.knn_k),
            }
            for i, row in enumerate(probs):
                best = int(row.argmax())
                score = float(scores[self.primary][i])
                results.append(
                    EdgePrediction(
                        label=self.labels[best],
                        confidence=float(row[best]),
                        probabilities=dict(zip(self.labels, map(float, row), strict=True)),
                        ood_score=score,
                        ood_scores={name: float(v[i]) for name, v in scores.items()},
                        is_ood=self.ood_threshold is not None and score > self.ood_threshold,
                        image_stats=image_statistics(rgb[i]),
                    )
                )
        return results
