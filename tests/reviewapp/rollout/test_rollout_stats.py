"""Pure statistics of the rollout pages: Wilson intervals and IPW. The exact tests that decide
(Learn then Test, the betting monitor) are tested in test_ltt.py and test_monitor.py."""

import random

import pytest

from reviewapp.rollout import stats

Z95 = stats.z_one_sided(0.975)  # two-sided 95%


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857, table II, method 3 (Wilson score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_published_values(successes, n, low, high):
    got_low, got_high = stats.wilson_interval(successes, n, Z95)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


def test_ipw_estimate_is_unbiased_on_a_synthetic_stream_with_known_truth():
    # Auto-decisions whose accuracy differs by confidence band, audited at different rates per
    # band (the audit rate was changed mid-stream): the plain mean of audited items is biased,
    # the inverse-propensity estimate is not.
    rng = random.Random(11)
    estimates, naive = [], []
    population = [(0.98, 0.02), (0.80, 0.30)] * 1000  # (P(correct), audit probability)
    truth_correct = []
    for _ in range(300):
        observations, audited = [], []
        correct_count = 0
        for p_correct, p_audit in population:
            correct = rng.random() < p_correct
            correct_count += correct
            if rng.random() < p_audit:
                observations.append((correct, p_audit))
                audited.append(correct)
            else:
                observations.append((None, p_audit))
        truth_correct.append(correct_count / len(population))
        estimates.append(stats.ipw_accuracy(observations).estimate)
        naive.append(sum(audited) / len(audited))
    truth = sum(truth_correct) / len(truth_correct)
    mean_estimate = sum(estimates) / len(estimates)
    standard_error = (
        sum((e - mean_estimate) ** 2 for e in estimates) / (len(estimates) - 1) / len(estimates)
    ) ** 0.5
    assert abs(mean_estimate - 0.89) < 4 * standard_error + 1e-3
    assert abs(truth - 0.89) < 0.005
    assert sum(naive) / len(naive) < 0.83  # dominated by the heavily audited, weaker band


def test_ipw_without_audits_has_no_estimate():
    result = stats.ipw_accuracy([(None, 0.1)] * 5)
    assert result.population == 5 and result.audited == 0 and result.estimate is None
