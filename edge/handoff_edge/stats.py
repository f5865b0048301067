"""The image statistics the server's domain guard checks (``mlcore.reference.image_statistics``).

A device reports them with each decision it made alone, so the server can refuse a decision on a
frame that looks unlike the champion's training images (too dark, washed out, another size or
colour mode) exactly as it refuses one on an uploaded image. The same formulas as mlcore, in
numpy and PIL only; tests/edge compares the two on the same images.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

THUMBNAIL = (64, 64)
GRAYSCALE_TOLERANCE = 8  # max channel spread (0..255) for a pixel to count as gray


def _colourfulness(rgb: np.ndarray) -> float:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float((spread + 0.3 * mean) / 255.0)


def _effective_resolution(gray: np.ndarray, full_side: int) -> float:
    g = gray.astype(np.float64) / 255.0
    if min(g.shape) < 2:
        return float(min(g.shape))
    gradient = np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()
    detail = min(g.shape) * gradient / (g.std() + 1.0 / 255.0)
    return float(min(detail, full_side))


def image_statistics(img: Image.Image) -> dict[str, float]:
    """Brightness, contrast, colour, gray share, effective resolution and size of an RGB image."""
    small = img.copy()
    small.thumbnail(THUMBNAIL)
    rgb = np.asarray(small, dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
    gray = np.asarray(small.convert("L"), dtype=np.float64)
    return {
        "brightness": float(gray.mean() / 255.0),
        "contrast": float(gray.std() / 255.0),
        "saturation": float(hsv[..., 1].mean() / 255.0),
        "colourfulness": _colourfulness(rgb),
        "gray_share": float((spread <= GRAYSCALE_TOLERANCE).mean()),
        "effective_resolution": _effective_resolution(gray, min(img.width, img.height)),
        "width": float(img.width),
        "height": float(img.height),
    }
