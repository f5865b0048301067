"""Fixtures for mlcore: real digit images and ONE small model trained once for the package."""

import os

import pytest
import torch

from mlcore.data import Record, split_records
from mlcore.demo import render_digits
from mlcore.images import load_rgb
from mlcore.train import TrainConfig, TrainedModel, train

SEED = 42
# Small enough for seconds on two CPU cores, big enough for ~95% validation accuracy. The
# model input (24 px) differs from the files (32 px), so every test also exercises the resize.
MAIN_CONFIG = TrainConfig(arch="resnet18", epochs=2, image_size=24, batch_size=64, seed=SEED)
TINY_CONFIG = TrainConfig(arch="resnet18", epochs=1, image_size=16, batch_size=32, seed=SEED)


@pytest.fixture(scope="package", autouse=True)
def _cpu_threads():
    """One torch thread by default: on a shared 2-core machine, two OpenMP threads competing
    with other jobs run this suite 2x slower (MLCORE_TEST_THREADS overrides)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("MLCORE_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="package")
def digits(tmp_path_factory) -> list[Record]:
    """All 1,797 scikit-learn digits rendered to 32 px PNG files."""
    return render_digits(tmp_path_factory.mktemp("digits"), size=32)


@pytest.fixture(scope="package")
def tiny_digits(digits) -> list[Record]:
    """A 160-image subset for the quick training runs (determinism, cancellation, CLI)."""
    return digits[:160]


@pytest.fixture(scope="package")
def progress_events() -> list:
    """Progress reports received while the session model trained."""
    return []


@pytest.fixture(scope="package")
def trained(_cpu_threads, digits, progress_events) -> TrainedModel:
    """The one real model of the test session."""
    return train(digits, MAIN_CONFIG, on_progress=progress_events.append)


@pytest.fixture(scope="package")
def valid_records(digits) -> list[Record]:
    """The validation split of the session model."""
    _, valid_idx = split_records(digits, seed=SEED, valid_pct=MAIN_CONFIG.valid_pct)
    return [digits[i] for i in valid_idx]


@pytest.fixture(scope="package")
def valid_images(valid_records):
    """Validation images, decoded."""
    return [load_rgb(r.path) for r in valid_records]


@pytest.fixture(scope="package")
def artifact(trained, tmp_path_factory):
    """The session model saved as an artifact."""
    from mlcore.artifacts import save_artifact

    return save_artifact(trained, tmp_path_factory.mktemp("artifacts") / "v1")
