"""fastai pieces of the data pipeline: the resize item transform, augmentation and DataLoaders.

This is the only mlcore module besides training that imports fastai; `mlcore.data` (records and
the split) stays free of it, and the dependency points one way: loaders -> data.
"""

import logging
import random
from collections.abc import Sequence

from fastai.data.block import CategoryBlock, DataBlock
from fastai.data.core import DataLoaders
from fastai.data.transforms import Normalize
from fastai.vision.augment import RandTransform, aug_transforms
from fastai.vision.core import PILImage
from fastai.vision.data import ImageBlock

from mlcore.data import AUGMENT_PRESETS, Record, label_vocab, split_records
from mlcore.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PAD_MODES,
    RESIZE_METHODS,
    ImageLoadError,
    load_rgb,
    resize_for_model,
)

logger = logging.getLogger(__name__)

# Keyword arguments of fastai's aug_transforms that a "custom" preset may set.
CUSTOM_AUG_KEYS = frozenset(
    {
        "do_flip",
        "flip_vert",
        "max_rotate",
        "min_zoom",
        "max_zoom",
        "max_lighting",
        "max_warp",
        "p_affine",
        "p_lighting",
    }
)


def load_record_image(record: Record) -> PILImage:
    """Load a record's image as RGB; the error names the item key and the file."""
    try:
        return PILImage(load_rgb(record.path))
    except ImageLoadError as exc:
        raise ImageLoadError(f"item {record.key}: {exc}") from exc


def _record_label(record: Record) -> str:
    return record.label


class ModelResize(RandTransform):
    """Item transform: crop/pad/squish to a square; random crop offset in training, centre else."""

    split_idx, order = None, 1

    def __init__(self, size: int, method: str = "squish", pad_mode: str = "zeros"):
        super().__init__()
        self.size, self.method, self.pad_mode = size, method, pad_mode
        self.position = (0.5, 0.5)

    def before_call(self, b, split_idx: int | None) -> None:
        self.position = (0.5, 0.5) if split_idx else (random.random(), random.random())

    def encodes(self, x: PILImage) -> PILImage:
        return PILImage(resize_for_model(x, self.size, self.method, self.pad_mode, self.position))


def augmentation_transforms(augment: str, strengths: dict | None = None) -> list:
    """Batch augmentation transforms for a preset: none, fastai's defaults, or custom strengths."""
    if augment not in AUGMENT_PRESETS:
        raise ValueError(f"augment must be one of {AUGMENT_PRESETS}, got {augment!r}")
    if augment == "none":
        return []
    if augment == "default":
        return aug_transforms()
    unknown = set(strengths or {}) - CUSTOM_AUG_KEYS
    if unknown:
        raise ValueError(f"unknown augmentation settings {sorted(unknown)}")
    return aug_transforms(**(strengths or {}))


def _validate_options(records: Sequence[Record], resize_method: str, pad_mode: str) -> None:
    if resize_method not in RESIZE_METHODS:
        raise ValueError(f"resize_method must be one of {RESIZE_METHODS}, got {resize_method!r}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    seen, duplicated = set(), set()
    for record in records:
        (duplicated if record.key in seen else seen).add(record.key)
    if duplicated:
        raise ValueError(f"record keys must be unique; duplicated: {sorted(duplicated)[:3]}")


def build_dataloaders(
    records: Sequence[Record],
    *,
    image_size: int,
    resize_method: str = "squish",
    pad_mode: str = "zeros",
    augment: str = "none",
    batch_size: int = 64,
    valid_pct: float = 0.2,
    seed: int = 0,
    device=None,
    aug_strengths: dict | None = None,
    num_workers: int = 0,
) -> DataLoaders:
    """fastai DataLoaders over records with the stable key-hash split (see mlcore.data)."""
    records = list(records)
    _validate_options(records, resize_method, pad_mode)
    train_idx, valid_idx = split_records(records, seed=seed, valid_pct=valid_pct)
    if not train_idx or not valid_idx:
        raise ValueError(
            f"split of {len(records)} items gave {len(train_idx)} train / {len(valid_idx)} "
            f"validation items; both need at least one (add data or change valid_pct)"
        )
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock(vocab=label_vocab(records))),
        get_x=load_record_image,
        get_y=_record_label,
        splitter=lambda items: (train_idx, valid_idx),
        item_tfms=[ModelResize(image_size, resize_method, pad_mode)],
        batch_tfms=[
            *augmentation_transforms(augment, aug_strengths),
            Normalize.from_stats(IMAGENET_MEAN, IMAGENET_STD),
        ],
    )
    # fastai drops the last incomplete training batch; never let that drop every batch.
    bs = max(1, min(batch_size, len(train_idx)))
    logger.debug("data.dataloaders n_train=%d n_valid=%d bs=%d", len(train_idx), len(valid_idx), bs)
    return block.dataloaders(records, bs=bs, device=device, num_workers=num_workers)
