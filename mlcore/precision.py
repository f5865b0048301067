"""Where and in which precision a batch runs: the one device switch of serving and training.

On CUDA, matrix work runs under autocast: bfloat16 where the GPU has it (same exponent range as
float32, so training needs no loss scaling), else float16 (with a GradScaler when training;
Micikevicius et al. 2018, "Mixed Precision Training", https://arxiv.org/abs/1710.03740). On the
CPU everything stays float32: the switch is a no-op there, so CI runs the very code path a GPU
runs, minus the precision. Batches are sized per device: large ones pay on a GPU only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CPU_BATCH_SIZE = 64
GPU_BATCH_SIZE = 256


def check_precision(precision: str) -> None:
    """Raise ValueError unless `precision` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def autocast_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for a device: None (float32) on the CPU or when fp32 is asked for."""
    check_precision(precision)
    device = torch.device(device)
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


@dataclass(frozen=True)
class DevicePlan:
    """How one predictor runs its batches: device, autocast dtype, chunk size, memory layout."""

    device: torch.device
    dtype: torch.dtype | None = None
    batch_size: int = CPU_BATCH_SIZE

    @classmethod
    def for_device(cls, device: torch.device | str, *, precision: str = "auto") -> DevicePlan:
        """The plan for `device`: float32 and batches of 64 on the CPU; autocast and 256 on CUDA."""
        device = torch.device(device)
        on_gpu = device.type == "cuda"
        return cls(
            device=device,
            dtype=autocast_dtype(device, precision),
            batch_size=GPU_BATCH_SIZE if on_gpu else CPU_BATCH_SIZE,
        )

    @property
    def on_gpu(self) -> bool:
        """True on CUDA: channels_last, pinned host buffers and non-blocking copies."""
        return self.device.type == "cuda"

    @property
    def precision(self) -> str:
        """ "fp32", "bf16" or "fp16", for logs and benchmark tables."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to the plan's dtype on CUDA; nothing at all on the CPU."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            yield
