"""Temperature scaling and ECE on synthetic logits with a known miscalibration."""

import numpy as np
import pytest

from mlcore.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)


def _overconfident(n: int = 4000, true_temperature: float = 2.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    calibrated_logits = rng.normal(0, 1.5, size=(n, 5))
    probs = softmax(calibrated_logits)
    targets = np.array([rng.choice(5, p=p) for p in probs])
    return calibrated_logits * true_temperature, targets


def test_fit_recovers_the_temperature_and_lowers_nll_and_ece():
    logits, targets = _overconfident()
    temperature = fit_temperature(logits, targets)
    assert temperature == pytest.approx(2.5, rel=0.1)
    assert negative_log_likelihood(logits, targets, temperature) < negative_log_likelihood(
        logits, targets
    )
    before = expected_calibration_error(softmax(logits), targets)
    after = expected_calibration_error(softmax(logits, temperature), targets)
    assert after < before / 2


def test_temperature_keeps_the_argmax():
    logits, _ = _overconfident(200)
    assert (softmax(logits, 3.0).argmax(1) == logits.argmax(1)).all()


def test_ece_of_a_perfectly_calibrated_confident_model_is_zero():
    probs = np.eye(3)[[0, 1, 2, 0]]
    assert expected_calibration_error(probs, np.array([0, 1, 2, 0])) == 0.0
    assert expected_calibration_error(probs, np.array([1, 2, 0, 1])) == 1.0
