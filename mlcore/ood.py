"""Out-of-domain scores (all oriented so that higher = more out-of-domain), thresholds and AUROC.

- msp: 1 - maximum softmax probability (Hendrycks & Gimpel 2017,
  https://arxiv.org/abs/1610.02136), on calibrated probabilities.
- energy: E(x) = -T * logsumexp(f(x) / T) with T = 1 (Liu et al. 2020,
  https://arxiv.org/abs/2010.03759).
- knn: distance from the L2-normalised penultimate embedding to its k-th nearest neighbour among
  the normalised training embeddings (Sun et al. 2022, https://arxiv.org/abs/2204.06507).
"""

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

SCORES = ("msp", "energy", "knn")
DEFAULT_PRIMARY_SCORE = "knn"
DEFAULT_TARGET_ACCEPTANCE = 0.95
DEFAULT_KNN_K = 10


def msp_score(probs: np.ndarray) -> np.ndarray:
    """1 - max softmax probability, per row."""
    return 1.0 - np.asarray(probs, dtype=np.float64).max(axis=1)


def energy_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Free energy -T * logsumexp(logits / T), per row."""
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return (-temperature * torch.logsumexp(z / temperature, dim=1)).numpy()


def normalize_features(features: np.ndarray | torch.Tensor) -> torch.Tensor:
    """L2-normalise embeddings row-wise (float32 tensor)."""
    x = torch.as_tensor(features).float()
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def knn_score(
    features: np.ndarray | torch.Tensor, bank: torch.Tensor, k: int = DEFAULT_KNN_K
) -> np.ndarray:
    """Euclidean distance from each normalised embedding to its k-th nearest bank entry.

    One matrix product and one top-k for the whole batch, on the bank's device (the GPU when
    the predictor runs there); the embeddings are moved to it if they are elsewhere.
    """
    bank = bank.float()
    queries = normalize_features(features).to(bank.device)
    if len(bank) == 0 or len(queries) == 0:
        return np.zeros(len(queries))
    k = max(1, min(k, len(bank)))
    similarity = queries @ bank.T  # both unit length: |a - b|^2 = 2 - 2 cos
    kth_similarity = similarity.topk(k, dim=1).values[:, -1]
    return (2.0 - 2.0 * kth_similarity.double()).clamp_min(0.0).sqrt().cpu().numpy()


def build_knn_bank(features: np.ndarray, *, max_items: int = 5000, seed: int = 0) -> torch.Tensor:
    """Normalised (sub-sampled) training embeddings, stored as float16 to keep artifacts small."""
    bank = normalize_features(features)
    if len(bank) > max_items:
        generator = torch.Generator().manual_seed(seed)
        bank = bank[torch.randperm(len(bank), generator=generator)[:max_items]]
    return bank.half()


def calibrate_threshold(in_domain_scores: np.ndarray, target_acceptance: float) -> float:
    """Smallest threshold that accepts (score <= threshold) >= target share of in-domain items."""
    scores = np.asarray(in_domain_scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("cannot calibrate an OOD threshold without in-domain scores")
    if not 0.0 < target_acceptance <= 1.0:
        raise ValueError(f"target_acceptance must be within (0, 1], got {target_acceptance}")
    return float(np.quantile(scores, target_acceptance, method="higher"))


def calibrate_thresholds(
    scores: dict[str, np.ndarray], target_acceptance: float = DEFAULT_TARGET_ACCEPTANCE
) -> dict[str, float]:
    """A threshold per score for the target in-domain acceptance rate."""
    return {name: calibrate_threshold(values, target_acceptance) for name, values in scores.items()}


def auroc(in_domain_scores: np.ndarray, out_domain_scores: np.ndarray) -> float:
    """Area under the ROC curve for separating OOD (positive, higher score) from in-domain."""
    neg = np.asarray(in_domain_scores, dtype=np.float64)
    pos = np.asarray(out_domain_scores, dtype=np.float64)
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError("AUROC needs at least one in-domain and one out-of-domain score")
    values = np.concatenate([neg, pos])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # Mann-Whitney U with average ranks for ties.
    upper = np.cumsum(counts)
    average_rank = upper - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    rank_sum = ranks[len(neg) :].sum()
    u = rank_sum - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))
