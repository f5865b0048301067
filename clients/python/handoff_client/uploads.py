"""What can be uploaded (files, bytes, PIL images, numpy arrays), its idempotency key, batches.

Idempotency keys. Unless the caller gives one, an upload's key is ``sha256:<hex of the bytes
sent>``: the same image always gets the same key, so a retried or repeated upload returns the
item stored the first time. ``upload_folder(keys="path")`` uses the file's path relative to the
folder instead (``cam-7/2024-05-01/0001.jpg``): that names the item as the caller's system does,
and re-uploading a file whose content changed is refused with ``Conflict``. Images and arrays are
encoded as PNG first, so their key is that of the PNG.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

try:
    from PIL import Image as PILImage
except ImportError:  # the optional "images" extra: only images and arrays need it
    PILImage = None

if TYPE_CHECKING:
    import numpy

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]{0,199}$")  # the API's key rule
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
MAX_BATCH = 50  # the server's default HANDOFF_API_MAX_BATCH
MAX_BATCH_BYTES = 24 * 1024 * 1024  # raw bytes; base64 makes 32 MB, half the default body limit


def content_key(data: bytes) -> str:
    """The default idempotency key of some image bytes: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def key_check(key: str) -> str:
    """Return ``key`` if the API accepts it as an idempotency key, else raise ValueError."""
    if not KEY_PATTERN.match(key):
        raise ValueError(
            f"{key!r} is not a valid key: use 1-200 characters from A-Z a-z 0-9 _ . : / @ + - "
            "(not starting with a symbol)"
        )
    return key


@dataclass(frozen=True)
class Upload:
    """One image ready to send, with its idempotency key, optional label and source metadata."""

    data: bytes
    key: str
    label: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        key: str | None = None,
        label: str = "",
        source: dict[str, Any] | None = None,
    ) -> Upload:
        """Encoded image bytes (PNG, JPEG, WEBP, GIF or BMP) as they are."""
        return cls(
            data=data,
            key=key_check(key) if key else content_key(data),
            label=label,
            source=dict(source or {}),
        )

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        key: str | None = None,
        label: str = "",
        source: dict[str, Any] | None = None,
    ) -> Upload:
        """An image file, read now; its name goes into ``source["filename"]``."""
        path = Path(path)
        meta = {"filename": path.name, **(source or {})}
        return cls.from_bytes(path.read_bytes(), key=key, label=label, source=meta)

    @classmethod
    def from_image(
        cls,
        image: PILImage.Image,
        *,
        key: str | None = None,
        label: str = "",
        source: dict[str, Any] | None = None,
    ) -> Upload:
        """A PIL image, encoded as PNG (lossless)."""
        return cls.from_bytes(_png(image), key=key, label=label, source=source)

    @classmethod
    def from_array(
        cls,
        array: numpy.ndarray,
        *,
        key: str | None = None,
        label: str = "",
        source: dict[str, Any] | None = None,
    ) -> Upload:
        """A numpy array (H×W gray, H×W×3 RGB or H×W×4 RGBA), encoded as PNG.

        uint8 arrays are taken as they are; float arrays must hold values in [0, 1]; bool arrays
        become black and white.
        """
        return cls.from_image(array_to_image(array), key=key, label=label, source=source)


UploadSource = Union[Upload, bytes, str, os.PathLike, "PILImage.Image", "numpy.ndarray"]


def _require_pillow() -> None:
    if PILImage is None:
        raise ImportError("images and arrays need Pillow: pip install 'handoff-client[images]'")


def _png(image: PILImage.Image) -> bytes:
    _require_pillow()
    if image.mode not in {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def array_to_image(array: numpy.ndarray) -> PILImage.Image:
    """A PIL image from a gray, RGB or RGBA array (uint8, float in [0, 1], or bool)."""
    _require_pillow()
    shape = tuple(array.shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))):
        raise ValueError(f"expected an H×W, H×W×1, H×W×3 or H×W×4 array, got shape {shape}")
    if len(shape) == 3 and shape[2] == 1:
        array = array[:, :, 0]
    kind = array.dtype.kind
    if kind == "b":
        array = array.astype("uint8") * 255
    elif kind == "f":
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(f"float arrays must hold values in [0, 1], got [{low}, {high}]")
        array = (array * 255.0).round().astype("uint8")
    elif array.dtype.name != "uint8":
        raise ValueError(f"expected uint8, float or bool values, got {array.dtype}")
    return PILImage.fromarray(array)


def as_upload(value: UploadSource) -> Upload:
    """Any supported input as an Upload with its default key."""
    if isinstance(value, Upload):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return Upload.from_bytes(bytes(value))
    if isinstance(value, str | os.PathLike):
        return Upload.from_path(value)
    if PILImage is not None and isinstance(value, PILImage.Image):
        return Upload.from_image(value)
    if hasattr(value, "__array_interface__") and hasattr(value, "dtype"):
        return Upload.from_array(value)
    raise TypeError(f"cannot upload a {type(value).__name__}: give a path, bytes, image or array")


def folder_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files under ``folder`` (recursively, sorted; hidden files and folders skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(str(root))
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
    return found


def folder_uploads(
    root: Path,
    files: list[Path],
    *,
    keys: str = "sha256",
    key_prefix: str = "",
    label_from_folder: bool = False,
) -> Iterator[Upload]:
    """Uploads for ``files`` under ``root``, each read only when it is reached.

    ``keys="path"`` keys each file by ``key_prefix`` + its relative path (checked up front, so a
    bad name fails before anything is sent); ``label_from_folder`` takes the first folder of the
    relative path as the label (the layout ``export_folder`` writes).
    """
    if keys not in {"sha256", "path"}:
        raise ValueError("keys must be 'sha256' or 'path'")
    relative = [path.relative_to(root).as_posix() for path in files]
    if keys == "path":
        for name in relative:
            key_check(key_prefix + name)
    for path, name in zip(files, relative, strict=True):
        label = name.split("/", 1)[0] if label_from_folder and "/" in name else ""
        key = key_prefix + name if keys == "path" else None
        yield Upload.from_path(path, key=key, label=label, source={"path": name})


def batches(
    uploads: Iterable[UploadSource], *, size: int = MAX_BATCH, max_bytes: int = MAX_BATCH_BYTES
) -> Iterator[list[Upload]]:
    """Group uploads into batches of at most ``size`` images and about ``max_bytes`` bytes."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    batch: list[Upload] = []
    total = 0
    for value in uploads:
        upload = as_upload(value)
        if batch and (len(batch) >= size or total + len(upload.data) > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(upload)
        total += len(upload.data)
    if batch:
        yield batch
