"""Real shifted images for out-of-domain evaluation and monitoring tests.

Near shifts are built from in-domain images (the rendered digits) the way cameras drift in the
field: "night" (inverted and dark), "washed" (grayscale haze, low contrast), "lowres" (low
resolution, blurred) and "rotate" (sideways). Far out-of-domain images are crops of the two
photographs bundled with scikit-learn (a Chinese temple, a flower).
"""

import logging
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter, ImageOps

logger = logging.getLogger(__name__)


def night(img: Image.Image) -> Image.Image:
    """Inverted and darkened: a dim light-on-dark image, like a night-time capture."""
    inverted = ImageOps.invert(img.convert("RGB"))
    return Image.fromarray((np.asarray(inverted, dtype=np.float64) * 0.55).round().astype(np.uint8))


def washed(img: Image.Image) -> Image.Image:
    """Grayscale and washed out: 25% contrast over a light-gray haze."""
    gray = np.asarray(img.convert("L"), dtype=np.float64)
    hazy = 170.0 + (gray - gray.mean()) * 0.25
    return Image.fromarray(hazy.clip(0, 255).round().astype(np.uint8)).convert("RGB")


def lowres(img: Image.Image, factor: int = 8) -> Image.Image:
    """Down-sampled by `factor`, blurred and scaled back: a low-resolution camera."""
    w, h = img.size
    small = img.convert("RGB").resize(
        (max(1, w // factor), max(1, h // factor)), Image.Resampling.BOX
    )
    big = small.resize((w, h), Image.Resampling.BILINEAR)
    return big.filter(ImageFilter.GaussianBlur(radius=max(1.0, w / 32)))


def rotate(img: Image.Image, degrees: float = 90.0) -> Image.Image:
    """Rotated (default a quarter turn), corners filled with white like the paper background."""
    return img.convert("RGB").rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor="white")


NEAR_SHIFTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "night": night,
    "washed": washed,
    "lowres": lowres,
    "rotate": rotate,
}


def apply_shift(images: Sequence[Image.Image], shift: str) -> list[Image.Image]:
    """Apply one named near shift to every image."""
    if shift not in NEAR_SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; choose one of {sorted(NEAR_SHIFTS)}")
    return [NEAR_SHIFTS[shift](img) for img in images]


def sample_photos() -> list[Image.Image]:
    """The two photographs that ship with scikit-learn, as RGB images."""
    # Deferred: scikit-learn is slow to import and only the far-OOD photos need it.
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(arr).convert("RGB") for arr in load_sample_images().images]


def far_ood_images(
    n: int = 64, *, min_side: int = 48, max_side: int = 320, seed: int = 0
) -> list[Image.Image]:
    """`n` deterministic random square crops of scikit-learn's sample photographs."""
    rng = np.random.default_rng(seed)
    photos = sample_photos()
    crops = []
    for i in range(n):
        photo = photos[i % len(photos)]
        side = int(rng.integers(min_side, min(max_side, *photo.size) + 1))
        left = int(rng.integers(0, photo.width - side + 1))
        top = int(rng.integers(0, photo.height - side + 1))
        crops.append(photo.crop((left, top, left + side, top + side)))
    return crops
