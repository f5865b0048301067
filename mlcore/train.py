"""Training with fastai's vision_learner, from scratch or from a local weights file (no download).

The caller gets progress through `on_progress` (no fastprogress bars on stdout) and can stop a run
through `should_cancel`. After fitting, the model is calibrated and analysed on the validation
split (see `mlcore.analysis`).
"""

import contextlib
import hashlib
import logging
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from fastai.callback.progress import ProgressCallback
from fastai.callback.schedule import fine_tune, fit_one_cycle, lr_find  # noqa: F401 (patches)
from fastai.metrics import accuracy
from fastai.vision.learner import vision_learner

from mlcore import nets
from mlcore.analysis import analyse
from mlcore.callbacks import CancelOnRequest, EpochHistory, Progress, ProgressReporter
from mlcore.data import Record, label_vocab, split_records
from mlcore.loaders import build_dataloaders
from mlcore.model import SCHEDULES, TrainConfig, TrainedModel, TrainingCancelled, resolve_device
from mlcore.precision import autocast_dtype
from mlcore.predict import Predictor

# TrainConfig, TrainedModel, TrainingCancelled and resolve_device live in mlcore.model (no
# fastai) and are re-exported here, where callers have always found them.
__all__ = [
    "ARCHITECTURES",
    "SCHEDULES",
    "Progress",
    "TrainConfig",
    "TrainedModel",
    "TrainingCancelled",
    "dataset_fingerprint",
    "resolve_device",
    "train",
]

logger = logging.getLogger(__name__)

ARCHITECTURES = nets.ARCHITECTURES


def dataset_fingerprint(records: Sequence[Record]) -> str:
    """sha256 over the sorted (key, label) pairs: the identity of a dataset snapshot."""
    digest = hashlib.sha256()
    for key, label in sorted((r.key, r.label) for r in records):
        digest.update(f"{key}\t{label}\n".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch for a block, restoring the previous RNG states afterwards."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


def _log_recorder(log: list) -> None:
    logger.debug("train.recorder %s", log)


def build_learner(records: Sequence[Record], config: TrainConfig, device: torch.device, path):
    """A fastai Learner over the records, silent, with optional local backbone weights."""
    dls = build_dataloaders(
        records,
        image_size=config.image_size,
        resize_method=config.resize_method,
        pad_mode=config.pad_mode,
        augment=config.augment,
        batch_size=config.batch_size,
        valid_pct=config.valid_pct,
        seed=config.seed,
        device=device,
        aug_strengths=config.aug_strengths,
        num_workers=config.num_workers,
    )
    # pretrained=False: vision_learner would otherwise download ImageNet weights.
    learn = vision_learner(
        dls, ARCHITECTURES[config.arch], pretrained=False, metrics=[accuracy], path=path
    )
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, ProgressCallback)])
    learn.logger = _log_recorder
    if config.weights_path:
        nets.load_backbone_weights(learn.model, config.arch, config.weights_path)
    use_mixed_precision(learn, device, config.precision)
    return learn


def use_mixed_precision(learn, device: torch.device, precision: str) -> None:
    """On CUDA: channels_last and autocast (bf16 without a loss scaler where the GPU has it,
    else fp16 with fastai's GradScaler; see `mlcore.precision`). On the CPU: nothing."""
    if device.type != "cuda":
        return
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        learn.to_channelslast(use_amp=False)
    else:
        learn.to_channelslast(amp_mode="bf16" if dtype == torch.bfloat16 else "fp16")
    logger.info("train.precision device=%s dtype=%s", device, dtype or "fp32")


def find_lr(learn) -> float:
    """fastai's lr_find "valley" suggestion (no plot)."""
    lr = float(learn.lr_find(show_plot=False).valley)
    logger.info("train.lr_find lr=%.3g", lr)
    return lr


def _fit(learn, config: TrainConfig, lr: float) -> None:
    if config.schedule == "fine_tune":
        learn.fine_tune(config.epochs, base_lr=lr, freeze_epochs=config.freeze_epochs)
    else:
        learn.fit_one_cycle(config.epochs, lr)


def _total_epochs(config: TrainConfig) -> int:
    extra = config.freeze_epochs if config.schedule == "fine_tune" else 0
    return config.epochs + extra


def fit_learner(
    learn,
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> tuple[list[dict], float]:
    """Fit with history, progress and cancellation callbacks; returns (history, lr)."""
    history, cancel = EpochHistory(), CancelOnRequest(should_cancel or (lambda: False))
    fit_cbs = [history]
    if on_progress is not None:
        fit_cbs.append(ProgressReporter(on_progress, _total_epochs(config)))
    learn.add_cbs([cancel])
    # lr_find runs with cancellation but without the progress/history callbacks.
    lr = config.lr if config.lr is not None else find_lr(learn)
    if not cancel.cancelled:
        with learn.added_cbs(fit_cbs):
            _fit(learn, config, lr)
    if cancel.cancelled:
        raise TrainingCancelled(f"training cancelled at {cancel.where}")
    return history.rows, lr


def train(
    records: Sequence[Record],
    config: TrainConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    dataset_hash: str | None = None,
) -> TrainedModel:
    """Train, calibrate and analyse an image classifier on labelled records."""
    config.validate()
    records = list(records)
    if len(label_vocab(records)) < 2:
        raise ValueError("training needs images of at least two labels")
    device = resolve_device(config.device)
    started = time.monotonic()
    with seeded(config.seed), tempfile.TemporaryDirectory(prefix="mlcore-train-") as workdir:
        learn = build_learner(records, config, device, workdir)
        fit_started = time.monotonic()
        history, lr = fit_learner(learn, config, on_progress, should_cancel)
        fit_seconds = time.monotonic() - fit_started
        if device.type == "cuda":
            learn.to_contiguous(to_fp32=True)
        model = learn.model.eval()
    analysis_started = time.monotonic()
    trained = _analysed_model(model, records, config, device, history)
    trained.dataset_hash = dataset_hash or dataset_fingerprint(records)
    trained.metrics.update(
        lr=lr,
        fit_seconds=round(fit_seconds, 3),
        analysis_seconds=round(time.monotonic() - analysis_started, 3),
        train_seconds=round(time.monotonic() - started, 3),
    )
    if on_progress is not None:
        last = history[-1] if history else {}
        on_progress(_done_progress(config, last, trained.metrics))
    logger.info("train.done arch=%s metrics=%s", config.arch, trained.metrics)
    return trained


def _analysed_model(model, records, config: TrainConfig, device, history) -> TrainedModel:
    labels = label_vocab(records)
    train_idx, valid_idx = split_records(records, seed=config.seed, valid_pct=config.valid_pct)
    # fp32 even on a GPU: temperature, OOD thresholds and the kNN bank are the reference that
    # serving (CPU fp32 by default) is compared with, so they must not carry autocast rounding.
    predictor = Predictor(
        model,
        labels=labels,
        preprocessing=config.preprocessing,
        device=str(device),
        precision="fp32",
    )
    result = analyse(
        predictor,
        [records[i] for i in train_idx],
        [records[i] for i in valid_idx],
        target_acceptance=config.ood_target_acceptance,
        primary_score=config.ood_primary_score,
        knn_k=config.knn_k,
        max_reference=config.max_reference_features,
        batch_size=max(config.batch_size, 64),
        seed=config.seed,
    )
    return TrainedModel(
        model=model,
        labels=labels,
        config=config,
        metrics=dict(result.metrics),
        temperature=result.temperature,
        ood_thresholds=result.ood_thresholds,
        ood_config=result.ood_config,
        reference_stats=result.reference_stats,
        knn_bank=result.knn_bank.cpu(),
        history=history,
        drift_tensors=result.drift_tensors,
        n_train=len(train_idx),
        n_valid=len(valid_idx),
    )


def _done_progress(config: TrainConfig, last: dict, metrics: dict) -> Progress:
    total = _total_epochs(config)
    return Progress(
        epoch=total - 1,
        epochs=total,
        batch=0,
        batches=0,
        fraction=1.0,
        train_loss=last.get("train_loss"),
        valid_loss=metrics.get("valid_loss"),
        metrics={k: v for k, v in metrics.items() if isinstance(v, float)},
        eta_seconds=0.0,
        phase="done",
    )
