"""Images to upload: small unique PNGs, and real handwritten digits (in the demo model's domain)."""

from __future__ import annotations

import functools
import io

from PIL import Image

from mlcore.demo import digit_image, load_digit_arrays


def png_encode(image: Image.Image) -> bytes:
    """The image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png(seed: int, size: int = 24) -> bytes:
    """A small, unique, valid PNG (its pixels encode `seed`)."""
    image = Image.new("L", (size, size), color=seed % 256)
    for index in range(4):
        image.putpixel((index, 0), (seed >> (8 * index)) & 0xFF)
    return png_encode(image)


@functools.cache
def _digits():
    return load_digit_arrays()[0]


def digit_png(seed: int) -> bytes:
    """A real handwritten digit, made unique by one corner pixel."""
    images = _digits()
    image = digit_image(images[seed % len(images)])
    image.putpixel((0, 0), 255 - (seed // len(images)) % 256)
    return png_encode(image)
