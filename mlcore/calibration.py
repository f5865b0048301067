"""Temperature scaling and calibration metrics.

Temperature scaling: Guo et al. 2017, "On Calibration of Modern Neural Networks",
https://arxiv.org/abs/1706.04599 — one scalar T fitted by minimising validation NLL of
softmax(logits / T). It never changes the arg-max, so accuracy is untouched.
"""

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, computed in float64 for stability."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(
    logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0
) -> float:
    """Mean cross-entropy of softmax(logits / T) against integer targets."""
    logits_t = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    targets_t = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    return float(F.cross_entropy(logits_t / temperature, targets_t))


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017, eq. 3)."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if len(probs) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, targets: np.ndarray, max_iter: int = 200) -> float:
    """Fit the temperature that minimises NLL on held-out logits (1.0 if it cannot help)."""
    logits_t = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    targets_t = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    if len(logits_t) == 0:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits_t / log_t.exp(), targets_t)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp().clamp(MIN_TEMPERATURE, MAX_TEMPERATURE))
    if not math.isfinite(temperature):
        return 1.0
    before = negative_log_likelihood(logits, targets, 1.0)
    after = negative_log_likelihood(logits, targets, temperature)
    if after > before:  # the 1-D optimum can only be worse through numerical trouble
        logger.warning("calibration.no_gain before=%.4f after=%.4f", before, after)
        return 1.0
    return temperature
