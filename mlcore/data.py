"""Records and the stable validation split (no fastai: serving and the web process use this).

The split is a pure function of (seed, item key): an item's side never changes when the dataset
grows or is reordered. fastai's `RandomSplitter` instead permutes the *current* item list with the
seed, so adding one item reshuffles everything and old validation items leak into training (and
validation metrics of successive model versions stop being comparable).

The fastai DataLoaders over records are built by `mlcore.loaders`, which imports this module;
this module never imports it back.
"""

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlcore.images import ImageLoadError, load_rgb

__all__ = [
    "AUGMENT_PRESETS",
    "ImageLoadError",
    "Record",
    "is_validation",
    "label_vocab",
    "load_rgb",
    "records_from_folder",
    "split_records",
]

logger = logging.getLogger(__name__)

AUGMENT_PRESETS = ("none", "default", "custom")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class Record:
    """One labelled image: where it is, its label, and a stable key that decides its split.

    ``group`` ties records that must share a side (the frames of one video clip): when set, it
    is hashed for the split instead of the (still unique) key.
    """

    path: str | os.PathLike
    label: str
    key: str
    group: str = ""

    @property
    def split_key(self) -> str:
        """What the split hashes: the group when there is one, else the key."""
        return self.group or self.key


def is_validation(key: str, *, seed: int = 0, valid_pct: float = 0.2) -> bool:
    """Return True when the item with this key belongs to the validation split."""
    if not 0.0 <= valid_pct <= 1.0:
        raise ValueError(f"valid_pct must be within [0, 1], got {valid_pct}")
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < valid_pct


def split_records(
    records: Sequence[Record], *, seed: int = 0, valid_pct: float = 0.2
) -> tuple[list[int], list[int]]:
    """Return (train indices, validation indices) by the stable key hash."""
    train_idx, valid_idx = [], []
    for i, record in enumerate(records):
        target = (
            valid_idx
            if is_validation(record.split_key, seed=seed, valid_pct=valid_pct)
            else train_idx
        )
        target.append(i)
    return train_idx, valid_idx


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def records_from_folder(root: str | os.PathLike) -> list[Record]:
    """Records for `root/<label>/<image>` files, keyed by content hash (stable across moves)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    records = [
        Record(path=str(path), label=label_dir.name, key=file_sha256(path))
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(label_dir.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not records:
        raise ValueError(f"no images found under {root}/<label>/")
    return records


def label_vocab(records: Iterable[Record]) -> list[str]:
    """Sorted list of distinct labels."""
    return sorted({r.label for r in records})
