"""Real clips for the tests, written with PyAV from scikit-learn's digits (mlcore.demo)."""

from __future__ import annotations

import io
from fractions import Fraction
from functools import cache

import av
import numpy as np
from PIL import Image

from mlcore import demo, video


@cache
def _digit_pixels() -> dict[int, np.ndarray]:
    """One scan per digit 0..9 (the first of each in the data set)."""
    images, targets = demo.load_digit_arrays(100)
    return {digit: images[list(targets).index(digit)] for digit in range(10)}


def digit_frame(digit: int, size: int = 32) -> Image.Image:
    """The demo's rendering of one digit (the images the tiny model was trained on)."""
    return demo.digit_image(_digit_pixels()[digit], size).convert("RGB")


def noise_frame(seed: int, size: int = 32) -> Image.Image:
    """Colour noise: nothing like a digit."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def digit_clip(digits: list[int], *, extension: str = "mp4", fps: int = 10) -> bytes:
    """A clip whose frame n shows digits[n]."""
    return video.clip_encode([digit_frame(d) for d in digits], extension=extension, fps=fps)


def noise_clip(frames: int = 16, *, extension: str = "mp4") -> bytes:
    """A clip of colour noise."""
    return video.clip_encode([noise_frame(i) for i in range(frames)], extension=extension)


def encoded(
    frames: list[Image.Image], *, extension: str = "mp4", codec: str = "libx264", rate=10
) -> bytes:
    """Frames in any container/codec PyAV writes (for the hostile set)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=extension) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames[0].size if frames else (32, 32)
        stream.pix_fmt = "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def blank_frames(count: int, width: int, height: int) -> list[Image.Image]:
    """Black frames (they compress to almost nothing, however many pixels they declare)."""
    return [Image.new("RGB", (width, height)) for _ in range(count)]


SLOW_RATE = Fraction(1, 600)  # one frame every ten minutes


def webm_without_frames() -> bytes:
    """A WebM with its header and track but no cluster: a video stream of zero frames."""
    data = digit_clip([1, 1, 1], extension="webm")
    return data[: data.index(b"\x1f\x43\xb6\x75")]  # the first Cluster element
