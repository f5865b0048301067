"""Evaluate a Predictor: labelled records (accuracy, calibration, confusion) and OOD shifts."""

import logging
from collections.abc import Sequence

import numpy as np
from PIL import Image

from mlcore import interpret, ood
from mlcore.calibration import expected_calibration_error, negative_log_likelihood, softmax
from mlcore.data import Record
from mlcore.images import ImageSource
from mlcore.predict import Predictor
from mlcore.shifts import NEAR_SHIFTS, apply_shift, far_ood_images

logger = logging.getLogger(__name__)


def evaluate_records(
    predictor: Predictor, records: Sequence[Record], *, batch_size: int = 64
) -> dict:
    """Accuracy, NLL/ECE (raw and calibrated), per-class report and confusion on records."""
    labels = predictor.labels
    known = [r for r in records if r.label in labels]
    if len(known) < len(records):
        logger.warning("evaluate.unknown_labels skipped=%d", len(records) - len(known))
    if not known:
        raise ValueError("no records with a label the model knows")
    logits, _ = predictor.outputs([r.path for r in known], batch_size=batch_size)
    targets = np.array([labels.index(r.label) for r in known])
    y_true = [r.label for r in known]
    y_pred = [labels[i] for i in logits.argmax(axis=1)]
    calibrated = softmax(logits, predictor.temperature)
    return {
        "n": len(known),
        "accuracy": interpret.accuracy(y_true, y_pred),
        "nll": negative_log_likelihood(logits, targets),
        "nll_calibrated": negative_log_likelihood(logits, targets, predictor.temperature),
        "ece": expected_calibration_error(softmax(logits), targets),
        "ece_calibrated": expected_calibration_error(calibrated, targets),
        "per_class": interpret.per_class_report(y_true, y_pred, labels),
        "most_confused": interpret.most_confused(y_true, y_pred, labels),
        "confusion_matrix": interpret.confusion_matrix(y_true, y_pred, labels).tolist(),
    }


def ood_scores(
    predictor: Predictor, images: Sequence[ImageSource], *, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """Every OOD score for each image."""
    logits, features = predictor.outputs(images, batch_size=batch_size)
    return predictor.scores(logits, features)[1]


def ood_auroc_table(
    predictor: Predictor,
    in_domain: Sequence[Image.Image],
    *,
    far_ood: Sequence[Image.Image] | None = None,
    batch_size: int = 64,
) -> dict[str, dict[str, float]]:
    """AUROC of each OOD score, per near shift of the in-domain images and for far-OOD photos.

    Also reports, per shift, the share flagged out-of-domain by the calibrated thresholds.
    """
    reference = ood_scores(predictor, in_domain, batch_size=batch_size)
    far = list(far_ood) if far_ood is not None else far_ood_images(len(in_domain))
    candidates = {name: apply_shift(in_domain, name) for name in NEAR_SHIFTS} | {"far_ood": far}
    table = {}
    for name, images in candidates.items():
        scores = ood_scores(predictor, images, batch_size=batch_size)
        row = {score: ood.auroc(reference[score], scores[score]) for score in ood.SCORES}
        for score, threshold in predictor.ood_thresholds.items():
            row[f"flagged_{score}"] = float((scores[score] > threshold).mean())
        table[name] = row
    return table
