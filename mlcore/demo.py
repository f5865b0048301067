"""Demo data: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans) as PNG files."""

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from mlcore.data import Record

logger = logging.getLogger(__name__)


def digit_image(pixels: np.ndarray, size: int = 32) -> Image.Image:
    """Render one 8x8 digit (values 0..16, 16 = ink) as a dark digit on white, `size` px square."""
    gray = 255.0 - np.asarray(pixels, dtype=np.float64).reshape(8, 8) * (255.0 / 16.0)
    img = Image.fromarray(gray.clip(0, 255).round().astype(np.uint8), mode="L")
    return img.resize((size, size), Image.Resampling.BILINEAR)


def load_digit_arrays(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images Nx8x8, integer targets N) of scikit-learn's digits, the first `limit`."""
    # Deferred: scikit-learn is slow to import and only the demo data needs it.
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, targets = digits.images, digits.target
    if limit is not None:
        images, targets = images[:limit], targets[:limit]
    return images, targets


def _save_png_atomic(img: Image.Image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


def render_digits(
    dest_dir: str | Path, *, size: int = 32, limit: int | None = None
) -> list[Record]:
    """Write digits as dest_dir/<label>/digit-<index:04d>.png (skipping existing) and list them."""
    dest_dir = Path(dest_dir)
    images, targets = load_digit_arrays(limit)
    records, written = [], 0
    for index, (pixels, target) in enumerate(zip(images, targets, strict=True)):
        label = str(int(target))
        path = dest_dir / label / f"digit-{index:04d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _save_png_atomic(digit_image(pixels, size), path)
            written += 1
        records.append(Record(path=str(path), label=label, key=f"digits-{index:04d}"))
    logger.info("demo.render_digits dest=%s total=%d written=%d", dest_dir, len(records), written)
    return records
