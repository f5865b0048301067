"""Single-purpose fastai callbacks: progress reporting, cancellation, per-epoch history."""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastai.callback.core import Callback, CancelFitException

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where a training run stands; `fraction` covers all epochs, train and valid batches."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    fraction: float
    train_loss: float | None
    valid_loss: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    eta_seconds: float | None = None
    phase: str = "train"


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _recorded_epoch(learn) -> tuple[float | None, float | None, dict[str, float]]:
    """(train_loss, valid_loss, metrics) of the epoch the Recorder just logged."""
    values = learn.recorder.values[-1] if learn.recorder.values else []
    names = [n for n in learn.recorder.metric_names if n not in ("epoch", "time")]
    logged = dict(zip(names, values, strict=False))
    metrics = {k: _finite(v) for k, v in logged.items() if k not in ("train_loss", "valid_loss")}
    return _finite(logged.get("train_loss")), _finite(logged.get("valid_loss")), metrics


class ProgressReporter(Callback):
    """Report `Progress` to a caller-supplied function, at most every `min_interval` seconds."""

    order = 70  # after Recorder (50), so an epoch's losses are logged when we read them

    def __init__(
        self,
        on_progress: Callable[[Progress], None],
        total_epochs: int,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.on_progress, self.total_epochs = on_progress, total_epochs
        self.min_interval, self.clock = min_interval, clock
        self.epochs_done, self.epoch_base = 0, 0
        self.started = self.last_sent = None
        self.last_valid_loss, self.last_metrics = None, {}

    def before_fit(self) -> None:
        self.epoch_base = self.epochs_done
        if self.started is None:
            self.started = self.clock()

    def _units(self) -> tuple[int, int]:
        n_train, n_valid = len(self.dls.train), len(self.dls.valid)
        per_epoch = max(1, n_train + n_valid)
        done_in_epoch = self.iter + 1 if self.training else n_train + self.iter + 1
        return (self.epoch_base + self.epoch) * per_epoch + done_in_epoch, per_epoch

    def _send(self, phase: str, batch: int, batches: int, fraction: float) -> None:
        elapsed = self.clock() - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        smooth = getattr(self.learn, "smooth_loss", None)
        self.on_progress(
            Progress(
                epoch=self.epoch_base + self.epoch,
                epochs=self.total_epochs,
                batch=batch,
                batches=batches,
                fraction=min(1.0, fraction),
                train_loss=_finite(smooth),
                valid_loss=self.last_valid_loss,
                metrics=dict(self.last_metrics),
                eta_seconds=eta,
                phase=phase,
            )
        )
        self.last_sent = self.clock()

    def after_batch(self) -> None:
        if self.last_sent is not None and self.clock() - self.last_sent < self.min_interval:
            return
        done, per_epoch = self._units()
        batches = len(self.dls.train) if self.training else len(self.dls.valid)
        phase = "train" if self.training else "valid"
        self._send(phase, self.iter + 1, batches, done / (self.total_epochs * per_epoch))

    def after_epoch(self) -> None:
        self.epochs_done += 1
        _, self.last_valid_loss, self.last_metrics = _recorded_epoch(self.learn)
        n_valid = len(self.dls.valid)
        self._send("valid", n_valid, n_valid, self.epochs_done / self.total_epochs)


class CancelOnRequest(Callback):
    """Stop training at the next batch once `should_cancel()` returns True."""

    order = 0

    def __init__(self, should_cancel: Callable[[], bool]):
        self.should_cancel = should_cancel
        self.cancelled = False
        self.where = ""

    def _check(self) -> None:
        if self.cancelled or self.should_cancel():
            if not self.cancelled:
                self.where = f"epoch {self.epoch} batch {self.iter}"
            self.cancelled = True
            raise CancelFitException()

    def before_fit(self) -> None:
        # fastai's fine_tune runs two fits; a cancelled first fit must not start the second.
        if self.cancelled:
            raise CancelFitException()

    def before_batch(self) -> None:
        self._check()


class EpochHistory(Callback):
    """Collect one dict per epoch: losses, metrics, learning rate and wall-clock seconds."""

    order = 60

    def __init__(self):
        self.rows: list[dict] = []
        self.started = 0.0

    def before_epoch(self) -> None:
        self.started = time.monotonic()

    def after_epoch(self) -> None:
        train_loss, valid_loss, metrics = _recorded_epoch(self.learn)
        row = {
            "epoch": len(self.rows),
            "train_loss": train_loss,
            "valid_loss": valid_loss,
            **metrics,
            "lr": _finite(self.opt.hypers[-1]["lr"]) if self.opt is not None else None,
            "seconds": round(time.monotonic() - self.started, 3),
        }
        self.rows.append(row)
        logger.info("train.epoch %s", row)
