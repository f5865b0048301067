"""Fashion-MNIST from Debian's idx files, and the small CNN that learns it on a CPU."""

import gzip
import struct

import numpy as np
import pytest
import torch

from mlcore import nets
from mlcore.data import Record
from mlcore.datasets import (
    FASHION_CLASSES,
    DatasetMissing,
    fashion_available,
    fashion_mnist,
    read_idx,
)
from mlcore.train import TrainConfig, train

needs_fashion = pytest.mark.skipif(
    not fashion_available(),
    reason="!! Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist "
    "(scripts/test.sh does it as root)",
)


def _idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_reads_shape_and_bytes(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _idx(tmp_path / "a.gz", array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)


def test_read_idx_refuses_other_files(tmp_path):
    (tmp_path / "b").write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "b")
    _idx(tmp_path / "c.gz", np.zeros((2, 2), dtype=np.uint8))
    data = gzip.open(tmp_path / "c.gz").read()[:-1]  # one byte short
    (tmp_path / "c").write_bytes(data)
    with pytest.raises(ValueError, match="bytes of data"):
        read_idx(tmp_path / "c")


def test_missing_dataset_says_how_to_install(tmp_path):
    with pytest.raises(DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("train", root=tmp_path)


@needs_fashion
def test_fashion_mnist_from_the_debian_files():
    train_set = fashion_mnist("train", start=0, limit=3)
    test_set = fashion_mnist("test", limit=3)
    assert len(FASHION_CLASSES) == 10 and train_set.classes == FASHION_CLASSES
    # The dataset's documented first items (github.com/zalandoresearch/fashion-mnist).
    assert train_set.labels == ["Ankle boot", "T-shirt/top", "T-shirt/top"]
    assert test_set.labels == ["Ankle boot", "Pullover", "Trouser"]
    image = train_set.images[0]
    assert (image.size, image.mode) == ((28, 28), "L")
    assert 0 < np.asarray(image).mean() < 255
    assert len(fashion_mnist("test", start=9_998)) == 2  # 10,000 test images


def test_small_cnn_has_the_layout_serving_loads():
    model = nets.build_network("small_cnn", 10)
    logits, features = nets.forward_with_features(model.eval(), torch.zeros(2, 3, 28, 28))
    assert logits.shape == (2, 10) and features.shape == (2, nets.HIDDEN_FEATURES)
    assert sum(p.numel() for p in model.parameters()) < 200_000
    with pytest.raises(ValueError, match="no pretrained weights"):
        nets.small_cnn(pretrained=True)


@needs_fashion
def test_small_cnn_learns_fashion_from_a_few_hundred_images(tmp_path):
    data = fashion_mnist("train", limit=400)
    records = []
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        image.save(tmp_path / f"{i}.png")
        records.append(Record(path=str(tmp_path / f"{i}.png"), label=label, key=f"fm-{i}"))
    config = TrainConfig(arch="small_cnn", epochs=4, image_size=28, lr=3e-3, batch_size=32, seed=1)
    trained = train(records, config)
    assert trained.metrics["valid_accuracy"] > 0.3  # chance is 0.1
    served = nets.build_network("small_cnn", 10)
    served.load_state_dict(trained.model.state_dict(), strict=True)
