"""Shifted images, far-OOD crops and the digits demo data."""

import numpy as np
from PIL import Image

from mlcore.demo import render_digits
from mlcore.images import load_rgb
from mlcore.shifts import NEAR_SHIFTS, apply_shift, far_ood_images


def test_render_digits_writes_labelled_pngs_idempotently(tmp_path):
    records = render_digits(tmp_path, size=24, limit=30)
    assert len(records) == 30
    first = records[0]
    assert first.key == "digits-0000" and first.label == "0"
    assert first.path == str(tmp_path / "0" / "digit-0000.png")
    img = load_rgb(first.path)
    assert img.size == (24, 24)
    assert img.getpixel((0, 0)) == (255, 255, 255)  # dark digit on white paper
    assert np.asarray(img).min() < 80
    mtime = (tmp_path / "0" / "digit-0000.png").stat().st_mtime_ns
    again = render_digits(tmp_path, size=24, limit=30)
    assert again == records
    assert (tmp_path / "0" / "digit-0000.png").stat().st_mtime_ns == mtime


def test_near_shifts_change_the_image_deterministically(digits):
    base = [load_rgb(r.path) for r in digits[:3]]
    for name in NEAR_SHIFTS:
        shifted = apply_shift(base, name)
        again = apply_shift(base, name)
        for a, b, orig in zip(shifted, again, base, strict=True):
            assert a.size == orig.size and a.mode == "RGB"
            assert np.array_equal(np.asarray(a), np.asarray(b))
            assert not np.array_equal(np.asarray(a), np.asarray(orig)), name
    night = np.asarray(apply_shift(base, "night")[0], dtype=float)
    assert night.mean() < np.asarray(base[0], dtype=float).mean() / 2


def test_far_ood_crops_are_deterministic_colour_photos():
    crops = far_ood_images(6, seed=3)
    assert len(crops) == 6 and all(isinstance(c, Image.Image) for c in crops)
    assert [c.size for c in crops] == [c.size for c in far_ood_images(6, seed=3)]
    saturation = np.mean([np.asarray(c.convert("HSV"))[..., 1].mean() for c in crops])
    assert saturation > 30
