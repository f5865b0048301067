"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (idx files read with numpy).

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747): 70,000 28×28 grayscale photos of
clothing in 10 classes, 60,000 for training and 10,000 for testing. The package installs the
gzipped idx files under ``/usr/share/datasets/fashion-mnist/``; the idx format is a big-endian
magic number (0x0000 08 NN: unsigned bytes, NN dimensions), the dimension sizes, then the data.
"""

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_UBYTE = 0x08


class DatasetMissing(FileNotFoundError):
    """The dataset's files are not installed."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An idx file (gzipped or not) of unsigned bytes as a numpy array of its shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] or data[1] or data[2] != _UBYTE:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {body.size} bytes of data for shape {shape}")
    return body.reshape(shape)


@dataclass(frozen=True)
class LabelledImages:
    """Images with their class names, in the dataset's order."""

    images: list[Image.Image]
    labels: list[str]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def fashion_available(root: str | os.PathLike = FASHION_ROOT) -> bool:
    """Whether the package's four idx files are there."""
    return all((Path(root) / name).is_file() for pair in _FILES.values() for name in pair)


def fashion_mnist(
    split: str = "train",
    *,
    root: str | os.PathLike = FASHION_ROOT,
    start: int = 0,
    limit: int | None = None,
) -> LabelledImages:
    """Fashion-MNIST's `split` ("train" or "test") as 28×28 grayscale PIL images and class
    names, items ``start`` to ``start + limit``; DatasetMissing when the package is absent
    (``apt-get install dataset-fashion-mnist``)."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    images_file, labels_file = (Path(root) / name for name in _FILES[split])
    if not images_file.is_file() or not labels_file.is_file():
        raise DatasetMissing(
            f"Fashion-MNIST is not under {root}: apt-get install dataset-fashion-mnist"
        )
    pixels, codes = read_idx(images_file), read_idx(labels_file)
    if pixels.ndim != 3 or codes.ndim != 1 or len(pixels) != len(codes):
        raise ValueError(f"{root}: images {pixels.shape} do not match labels {codes.shape}")
    end = len(codes) if limit is None else min(len(codes), start + limit)
    logger.info("datasets.fashion_mnist split=%s items=%d", split, max(0, end - start))
    return LabelledImages(
        images=[Image.fromarray(pixels[i]) for i in range(start, end)],
        labels=[FASHION_CLASSES[int(c)] for c in codes[start:end]],
        classes=FASHION_CLASSES,
    )
