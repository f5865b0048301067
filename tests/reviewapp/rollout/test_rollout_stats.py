"""Pure statistics of the rollout engine: Wilson, Clopper-Pearson, IPW, the sequential check."""

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


def test_one_sided_wilson_bounds_bracket_the_rate_and_tighten_with_n():
    assert stats.wilson_lower(0, 0, 0.95) == 0.0 and stats.wilson_upper(0, 0, 0.95) == 1.0
    bounds = [stats.wilson_lower(0.9 * n, n, 0.95) for n in (10, 100, 1000, 10000)]
    assert bounds == sorted(bounds) and bounds[-1] < 0.9 < stats.wilson_upper(9000, 10000, 0.95)


def test_clopper_pearson_matches_closed_forms():
    # With no successes the exact upper bound is 1 - alpha^(1/n).
    for n in (1, 5, 30):
        assert stats.clopper_pearson_upper(0, n, 0.025) == pytest.approx(1 - 0.025 ** (1 / n))
    assert stats.clopper_pearson_upper(5, 10, 0.025) == pytest.approx(0.8129, abs=1e-4)
    assert stats.clopper_pearson_upper(10, 10, 0.05) == 1.0


def test_alpha_spending_sums_to_alpha():
    assert sum(stats.look_alpha(0.05, k) for k in range(1, 200_000)) == pytest.approx(
        0.05, rel=1e-4
    )


def test_sequential_check_rarely_demotes_a_model_at_target():
    # A model exactly at target, looked at after every one of 300 audits, in 200 replays: the
    # share of replays with any false demotion stays below alpha (here 0.05).
    rng = random.Random(7)
    false_alarms = 0
    for _ in range(200):
        outcomes = []
        for look in range(1, 301):
            outcomes.append(rng.random() < 0.9)
            result = stats.sequential_check(
                outcomes=outcomes, look=look, target=0.9, alpha=0.05, window=200
            )
            if result.breached:
                false_alarms += 1
                break
    assert false_alarms / 200 <= 0.05


def test_sequential_check_catches_a_broken_model_within_the_stated_bound():
    bound = stats.looks_to_detect(agreement=0.0, target=0.9, alpha=0.05, window=200)
    assert bound == 3
    outcomes = [False] * bound
    assert stats.sequential_check(
        outcomes=outcomes, look=bound, target=0.9, alpha=0.05, window=200
    ).breached
    assert not stats.sequential_check(
        outcomes=outcomes[:-1], look=bound - 1, target=0.9, alpha=0.05, window=200
    ).breached


def test_reviews_needed_says_how_many_more():
    # With perfect agreement the one-sided 95% Wilson bound reaches 0.95 at n = 52.
    assert stats.reviews_needed(n=0, agreed=0, target=0.95, confidence=0.95) == 52
    assert stats.wilson_lower(52, 52, 0.95) >= 0.95 > stats.wilson_lower(51, 51, 0.95)
    assert stats.reviews_needed(n=52, agreed=52, target=0.95, confidence=0.95) == 0
    assert stats.reviews_needed(n=10, agreed=10, target=0.95, confidence=0.95, minimum=200) == 190
    assert stats.reviews_needed(n=100, agreed=90, target=0.95, confidence=0.95) is None


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
