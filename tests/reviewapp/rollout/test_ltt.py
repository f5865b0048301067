"""Learn then Test (reviewapp.rollout.ltt): known cases, monotone in ε and δ, and the guarantee
itself checked on 1,000 seeded simulated calibration sets."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from reviewapp.rollout import ltt
from reviewapp.rollout.ltt import Labelled


def _sample(confidences, wrong):
    return [
        Labelled(confidence=float(c), wrong=bool(w))
        for c, w in zip(confidences, wrong, strict=True)
    ]


def test_the_p_value_is_the_exact_binomial_tail():
    assert ltt.p_value(errors=2, n=300, epsilon=0.01) == pytest.approx(binom.cdf(2, 300, 0.01))
    assert ltt.p_value(errors=0, n=0, epsilon=0.01) == 1.0


def test_an_error_free_class_needs_the_textbook_sample_size():
    # 0 errors of n rejects "error >= 1%" at level 0.005 iff 0.99^n <= 0.005: n >= 528.
    assert ltt.min_labels(epsilon=0.01, level=0.005) == 528
    assert 0.99**528 <= 0.005 < 0.99**527
    too_few = _sample([0.99] * 527, [False] * 527)
    enough = _sample([0.99] * 528, [False] * 528)
    assert not ltt.class_threshold(label="a", labelled=too_few, epsilon=0.01, level=0.005).certified
    result = ltt.class_threshold(label="a", labelled=enough, epsilon=0.01, level=0.005)
    assert result.certified and result.threshold <= 0.99 and result.errors == 0


def test_the_threshold_stops_above_the_first_region_that_fails():
    # 200 clean labels at 0.999, then 100 at 0.8 of which half are wrong: the chosen threshold
    # keeps the clean block and stops before the bad one.
    confidences = [0.999] * 200 + [0.8] * 100
    wrong = [False] * 200 + [i % 2 == 0 for i in range(100)]
    result = ltt.class_threshold(
        label="a", labelled=_sample(confidences, wrong), epsilon=0.05, level=0.05
    )
    assert result.certified
    assert 0.8 < result.threshold <= 0.999
    assert result.n == 200 and result.errors == 0


def test_a_bad_class_is_never_certified_and_says_more_of_the_same_cannot_pass():
    result = ltt.class_threshold(
        label="shirt",
        labelled=_sample([0.99] * 100, [i < 20 for i in range(100)]),
        epsilon=0.05,
        level=0.05,
    )
    assert not result.certified and result.threshold == ltt.NEVER and result.needed is None


def test_what_a_thin_class_still_needs_is_a_count_of_blind_labels():
    result = ltt.class_threshold(
        label="a", labelled=_sample([0.99] * 10, [False] * 10), epsilon=0.05, level=0.05
    )
    assert not result.certified
    assert result.needed == ltt.min_labels(epsilon=0.05, level=0.05) - 10


def test_delta_is_split_across_classes():
    sample = _sample([0.99] * 60, [False] * 60)  # rejects at 0.05 (0.95^60 = 0.046), not 0.025
    one = ltt.thresholds(labelled={"a": sample}, labels=["a"], epsilon=0.05, delta=0.05)
    two = ltt.thresholds(labelled={"a": sample}, labels=["a", "b"], epsilon=0.05, delta=0.05)
    assert one["a"].certified and not two["a"].certified
    assert two["a"].level == pytest.approx(0.025) and not two["b"].certified


def _calibration(rng, n):
    """A class whose error rises as confidence falls: P(wrong | c) = 1.2 (1 - c)."""
    confidences = rng.beta(5, 1, size=n)
    wrong = rng.random(n) < np.clip(1.2 * (1 - confidences), 0, 1)
    return confidences, wrong


def _true_risk(threshold):
    """E[1.2 (1 - C) | C >= t] for C ~ Beta(5, 1): density 5c^4 on [0, 1]."""
    mass = 1 - threshold**5
    integral = 5 * ((1 - threshold**5) / 5 - (1 - threshold**6) / 6)
    return 1.2 * integral / mass


@pytest.mark.parametrize("epsilon", [0.05, 0.1, 0.15])
def test_monotone_in_epsilon_and_delta(epsilon):
    rng = np.random.default_rng(7)
    confidences, wrong = _calibration(rng, 2000)
    sample = _sample(confidences, wrong)
    looser_eps = ltt.class_threshold(label="a", labelled=sample, epsilon=epsilon * 1.5, level=0.05)
    base = ltt.class_threshold(label="a", labelled=sample, epsilon=epsilon, level=0.05)
    looser_delta = ltt.class_threshold(label="a", labelled=sample, epsilon=epsilon, level=0.2)
    assert base.certified
    assert looser_eps.threshold <= base.threshold
    assert looser_delta.threshold <= base.threshold


def test_the_realised_error_exceeds_epsilon_in_at_most_a_delta_share_of_1000_calibrations():
    rng = np.random.default_rng(2024)
    epsilon, delta, runs = 0.05, 0.1, 1000
    violations = certified = 0
    for _ in range(runs):
        confidences, wrong = _calibration(rng, 800)
        result = ltt.class_threshold(
            label="a", labelled=_sample(confidences, wrong), epsilon=epsilon, level=delta
        )
        if result.certified:
            certified += 1
            violations += _true_risk(result.threshold) > epsilon
    assert certified > runs / 2  # the rule does automate: the test is not vacuous
    assert violations / runs <= delta
    # And the true risk is not trivially far below ε: the chosen thresholds use the budget.
    assert _true_risk(ltt.GRID[-1]) > epsilon


def test_the_grid_is_fixed_and_runs_from_high_to_low():
    assert list(ltt.GRID) == sorted(ltt.GRID, reverse=True)
    assert ltt.GRID[0] > 0.999 and math.isclose(ltt.GRID[-1], 0.5)
