"""Image loading and the deterministic preprocessing shared by training (validation) and serving.

Everything here is pure PIL/numpy/torch so that the serving path needs no fastai.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

RESIZE_METHODS = ("crop", "pad", "squish")
PAD_MODES = ("zeros", "border", "reflection")
# ImageNet channel statistics; always applied (also from scratch) so that a local weights file
# trained on ImageNet sees the inputs it expects. Stored in each artifact's metadata.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_NUMPY_PAD_MODES = {"border": "edge", "reflection": "reflect"}

ImageSource = str | os.PathLike | bytes | IO[bytes] | Image.Image


class ImageLoadError(ValueError):
    """An image could not be decoded; the message names the file or item."""


def describe_source(source: object) -> str:
    """Return a short human-readable name for an image source, for error messages."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, bytes | bytearray):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image mode={source.mode} size={source.size}>"
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    img = Image.open(source)
    # Decode now (not lazily) so that truncated files fail here, with a clear message.
    img.load()
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # High bit-depth grayscale: rescale the actual range to 0..255, not a blind clip.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA")
    elif mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def load_rgb(source: ImageSource) -> Image.Image:
    """Load an image from a path, bytes, file object or PIL image as a fully decoded RGB image."""
    try:
        img = _open(source)
        img = ImageOps.exif_transpose(img) or img
        rgb = _to_rgb(img)
        rgb.load()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"cannot load image {describe_source(source)}: {exc}") from exc
    return rgb


def _pad_to_square(img: Image.Image, side: int, pad_mode: str) -> Image.Image:
    w, h = img.size
    left, top = (side - w) // 2, (side - h) // 2
    if pad_mode == "zeros":
        canvas = Image.new("RGB", (side, side), (0, 0, 0))
        canvas.paste(img, (left, top))
        return canvas
    arr = np.asarray(img)
    widths = ((top, side - h - top), (left, side - w - left), (0, 0))
    return Image.fromarray(np.pad(arr, widths, mode=_NUMPY_PAD_MODES[pad_mode]))


def resize_for_model(
    img: Image.Image,
    size: int,
    method: str = "squish",
    pad_mode: str = "zeros",
    position: tuple[float, float] = (0.5, 0.5),
) -> Image.Image:
    """Resize an RGB image to `size`x`size` by crop, pad or squish (validation uses the centre)."""
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize method must be one of {RESIZE_METHODS}, got {method!r}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad mode must be one of {PAD_MODES}, got {pad_mode!r}")
    w, h = img.size
    if method == "squish" or w == h:
        return img.resize((size, size), Image.Resampling.BILINEAR)
    if method == "crop":
        side = min(w, h)
        left, top = int(position[0] * (w - side)), int(position[1] * (h - side))
        box = (left, top, left + side, top + side)
        return img.resize((size, size), Image.Resampling.BILINEAR, box=box)
    scale = size / max(w, h)
    inner = (max(1, round(w * scale)), max(1, round(h * scale)))
    return _pad_to_square(img.resize(inner, Image.Resampling.BILINEAR), size, pad_mode)


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert an RGB PIL image to a uint8 CxHxW tensor."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def normalize_batch(
    batch: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Turn a uint8 NxCxHxW batch into the normalised float batch the network expects.

    In place on one fresh float tensor, on whatever device the batch is on (the GPU path copies
    uint8 there and normalises there: a quarter of the bytes over the bus). A channels_last
    input (an NHWC array seen as NCHW) keeps its layout.
    """
    x = batch.float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def stack_views(views: Sequence[Image.Image], out: np.ndarray | None = None) -> np.ndarray:
    """Copy same-size RGB views into one uint8 NxHxWx3 array (`out`, e.g. pinned, if given)."""
    if not views:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    w, h = views[0].size
    if out is None:
        out = np.empty((len(views), h, w, 3), dtype=np.uint8)
    for i, view in enumerate(views):
        out[i] = np.asarray(view, dtype=np.uint8)
    return out


@dataclass(frozen=True)
class Preprocessing:
    """The deterministic validation/serving preprocessing: load, resize, normalise."""

    size: int
    method: str = "squish"
    pad_mode: str = "zeros"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def view(self, source: ImageSource) -> Image.Image:
        """Exactly what the model sees, as an RGB image of `size`x`size`."""
        return resize_for_model(load_rgb(source), self.size, self.method, self.pad_mode)

    def views(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Resize decoded RGB images for the model (PIL, the resize the validation loader uses)."""
        return [resize_for_model(img, self.size, self.method, self.pad_mode) for img in images]

    def batch(self, views: Sequence[Image.Image]) -> torch.Tensor:
        """Stack resized views into a normalised float NxCxHxW tensor (contiguous, on the CPU)."""
        return self.normalize(torch.from_numpy(stack_views(views))).contiguous()

    def normalize(self, nhwc: torch.Tensor) -> torch.Tensor:
        """Normalise a uint8 NxHxWx3 tensor into a float NxCxHxW view of it (channels_last)."""
        return normalize_batch(nhwc.permute(0, 3, 1, 2), self.mean, self.std)

    def to_dict(self) -> dict:
        """JSON-friendly form for artifact metadata."""
        return {
            "input_size": self.size,
            "resize_method": self.method,
            "pad_mode": self.pad_mode,
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
        }

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """Inverse of to_dict."""
        norm = data.get("normalization", {})
        return cls(
            size=int(data["input_size"]),
            method=data.get("resize_method", "squish"),
            pad_mode=data.get("pad_mode", "zeros"),
            mean=tuple(norm.get("mean", IMAGENET_MEAN)),
            std=tuple(norm.get("std", IMAGENET_STD)),
        )
