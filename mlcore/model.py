"""What a training run is configured with and what it produces, in plain torch (no fastai).

Training (`mlcore.train`) builds a `TrainedModel`; serving (`mlcore.predict`) and storage
(`mlcore.artifacts`) read one. Keeping these types here lets both sides import them without
importing the training loop, so the dependency points one way: train -> predict -> model.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from mlcore import nets, ood
from mlcore.data import AUGMENT_PRESETS
from mlcore.images import PAD_MODES, RESIZE_METHODS, Preprocessing
from mlcore.precision import PRECISIONS

__all__ = [
    "SCHEDULES",
    "TrainConfig",
    "TrainedModel",
    "TrainingCancelled",
    "resolve_device",
]

SCHEDULES = ("one_cycle", "fine_tune")


class TrainingCancelled(Exception):
    """Raised by `mlcore.train.train` when `should_cancel` asked it to stop."""


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (stored in the artifact's metadata)."""

    arch: str = "resnet18"
    epochs: int = 3
    image_size: int = 32
    resize_method: str = "squish"
    pad_mode: str = "zeros"
    augment: str = "none"
    batch_size: int = 64
    lr: float | None = 2e-3
    valid_pct: float = 0.2
    seed: int = 42
    weights_path: str | None = None
    device: str | None = None
    schedule: str = "one_cycle"
    aug_strengths: dict | None = None
    freeze_epochs: int = 1
    ood_target_acceptance: float = ood.DEFAULT_TARGET_ACCEPTANCE
    ood_primary_score: str = ood.DEFAULT_PRIMARY_SCORE
    knn_k: int = ood.DEFAULT_KNN_K
    max_reference_features: int = 5000
    # 0 = load in the training process: deterministic, and the only option inside Celery's
    # prefork pool, whose daemonic workers may not start DataLoader worker processes.
    num_workers: int = 0
    # Mixed precision on CUDA ("auto": bf16 where supported, else fp16); ignored on the CPU.
    precision: str = "auto"

    def validate(self) -> None:
        """Raise ValueError for settings that cannot work."""
        nets.check_arch(self.arch)
        checks = [
            (
                self.resize_method in RESIZE_METHODS,
                f"resize_method must be one of {RESIZE_METHODS}",
            ),
            (self.pad_mode in PAD_MODES, f"pad_mode must be one of {PAD_MODES}"),
            (self.augment in AUGMENT_PRESETS, f"augment must be one of {AUGMENT_PRESETS}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.ood_primary_score in ood.SCORES, f"ood_primary_score must be in {ood.SCORES}"),
            (self.epochs >= 1 and self.image_size >= 8, "need epochs >= 1 and image_size >= 8"),
            (self.batch_size >= 1 and self.num_workers >= 0, "need batch_size >= 1"),
            (self.lr is None or self.lr > 0, "lr must be positive or None (lr_find)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def preprocessing(self) -> Preprocessing:
        """The validation/serving preprocessing these settings imply."""
        return Preprocessing(self.image_size, self.resize_method, self.pad_mode)


@dataclass
class TrainedModel:
    """A trained, calibrated network with what serving and monitoring need."""

    model: nn.Module
    labels: list[str]
    config: TrainConfig
    metrics: dict[str, float]
    temperature: float
    ood_thresholds: dict[str, float]
    ood_config: dict
    reference_stats: dict
    knn_bank: torch.Tensor
    history: list[dict] = field(default_factory=list)
    drift_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    dataset_hash: str = ""
    n_train: int = 0
    n_valid: int = 0

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing the model was validated with."""
        return self.config.preprocessing


def resolve_device(device: str | None) -> torch.device:
    """The requested device, or CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_threads_set(threads: int) -> None:
    """Run this thread's CPU forwards (and threads started later) on ``threads`` intra-op threads.

    torch keeps the count per thread once a thread has used it, so a serving thread sets its
    own. One thread for a small batch on a machine whose other cores are busy: an OpenMP region
    waits for its slowest thread, and a thread the kernel has parked stalls every layer.
    """
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
