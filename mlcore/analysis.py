"""After training: calibrate the temperature, fit OOD thresholds and record reference statistics.

Runs the serving path (`Predictor`) over the training and validation records, so the thresholds
and statistics are computed exactly the way production predictions will be scored.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mlcore import ood
from mlcore.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)
from mlcore.data import Record
from mlcore.drift_reference import build_drift_reference
from mlcore.predict import Predictor
from mlcore.reference import (
    confidence_histogram,
    feature_summary,
    image_statistics_batch,
    label_distribution,
    summarize_image_statistics,
)

logger = logging.getLogger(__name__)


@dataclass
class OutputsWithStats:
    """Network outputs over a record list plus per-image statistics."""

    logits: np.ndarray
    features: np.ndarray
    targets: np.ndarray
    image_stats: list[dict[str, float]]


@dataclass
class Analysis:
    """Everything fitted on held-out data after training."""

    temperature: float
    metrics: dict[str, float]
    ood_thresholds: dict[str, float]
    ood_config: dict
    reference_stats: dict
    knn_bank: torch.Tensor
    drift_tensors: dict[str, torch.Tensor]


def collect_outputs(
    predictor: Predictor, records: Sequence[Record], labels: list[str], batch_size: int
) -> OutputsWithStats:
    """Run the predictor over records, keeping logits, embeddings and image statistics."""
    index = {label: i for i, label in enumerate(labels)}
    logits, features, stats = [], [], []
    sources = [r.path for r in records]
    for batch in predictor.iter_outputs(sources, batch_size=batch_size):
        logits.append(batch.logits)
        features.append(batch.features)
        stats.extend(image_statistics_batch(batch.images))
    return OutputsWithStats(
        logits=np.concatenate(logits),
        features=np.concatenate(features),
        targets=np.array([index[r.label] for r in records], dtype=np.int64),
        image_stats=stats,
    )


def calibration_metrics(logits: np.ndarray, targets: np.ndarray, temperature: float) -> dict:
    """Accuracy, NLL and ECE before and after temperature scaling."""
    raw, scaled = softmax(logits, 1.0), softmax(logits, temperature)
    nll_before = negative_log_likelihood(logits, targets, 1.0)
    return {
        "valid_accuracy": float((raw.argmax(axis=1) == targets).mean()),
        "valid_loss": nll_before,
        "valid_nll_before_calibration": nll_before,
        "valid_nll_after_calibration": negative_log_likelihood(logits, targets, temperature),
        "ece_before": expected_calibration_error(raw, targets),
        "ece_after": expected_calibration_error(scaled, targets),
    }


def analyse(
    predictor: Predictor,
    train_records: Sequence[Record],
    valid_records: Sequence[Record],
    *,
    target_acceptance: float = ood.DEFAULT_TARGET_ACCEPTANCE,
    primary_score: str = ood.DEFAULT_PRIMARY_SCORE,
    knn_k: int = ood.DEFAULT_KNN_K,
    max_reference: int = 5000,
    batch_size: int = 64,
    seed: int = 0,
) -> Analysis:
    """Fit temperature and OOD thresholds on validation; summarise the training reference."""
    labels = predictor.labels
    train = collect_outputs(predictor, train_records, labels, batch_size)
    valid = collect_outputs(predictor, valid_records, labels, batch_size)
    temperature = fit_temperature(valid.logits, valid.targets)
    bank = build_bank(train.features, max_reference, seed)
    predictor.temperature, predictor.knn_bank = temperature, bank
    predictor.ood_config = {"knn_k": knn_k, "primary_score": primary_score}
    probs, scores = predictor.scores(valid.logits, valid.features)
    thresholds = ood.calibrate_thresholds(scores, target_acceptance)
    metrics = calibration_metrics(valid.logits, valid.targets, temperature)
    reference = reference_statistics(train, valid, probs, labels)
    reference["drift"], drift_tensors = build_drift_reference(
        features=valid.features,
        probs=probs,
        is_ood=scores[primary_score] > thresholds[primary_score],
        image_stats=valid.image_stats,
        labels=labels,
        seed=seed,
    )
    ood_config = {
        "primary_score": primary_score,
        "target_acceptance": target_acceptance,
        "knn_k": knn_k,
        "validation_acceptance": {
            name: float((values <= thresholds[name]).mean()) for name, values in scores.items()
        },
    }
    logger.info("train.analysis metrics=%s temperature=%.4f", metrics, temperature)
    return Analysis(temperature, metrics, thresholds, ood_config, reference, bank, drift_tensors)


def build_bank(features: np.ndarray, max_items: int, seed: int) -> torch.Tensor:
    """The kNN reference bank from training embeddings."""
    return ood.build_knn_bank(features, max_items=max_items, seed=seed)


def reference_statistics(
    train: OutputsWithStats, valid: OutputsWithStats, valid_probs: np.ndarray, labels: list[str]
) -> dict:
    """The drift baseline: label mix, confidence histogram, embedding and image statistics."""
    return {
        "label_distribution": label_distribution([labels[t] for t in train.targets], labels),
        "valid_label_distribution": label_distribution([labels[t] for t in valid.targets], labels),
        "valid_prediction_distribution": label_distribution(
            [labels[i] for i in valid_probs.argmax(axis=1)], labels
        ),
        "confidence_histogram": confidence_histogram(valid_probs.max(axis=1)),
        "features": feature_summary(train.features),
        "image_stats": summarize_image_statistics(train.image_stats + valid.image_stats),
    }
