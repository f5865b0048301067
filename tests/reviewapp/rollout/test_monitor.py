"""The anytime-valid monitor (reviewapp.rollout.monitor): false demotions at ε, detection at 3ε,
the confidence bound, and the adaptive audit rate. Seeded simulations, no timing."""

import numpy as np
import pytest

from reviewapp.rollout import monitor

EPSILON, ALPHA = 0.01, 0.05


def test_a_class_whose_error_is_at_epsilon_is_demoted_in_at_most_5_percent_of_10000_item_runs():
    rng = np.random.default_rng(11)
    runs = 400
    outcomes = rng.random((runs, 10_000)) < EPSILON  # every item audited: the hardest case
    crossings = monitor.first_crossing(outcomes, null=EPSILON, alpha=ALPHA)
    assert (crossings > 0).mean() <= 0.05


AUDITS_TO_CATCH_3_EPSILON = 1_100  # stated: 95% of runs demote within this many audits


def test_a_class_at_three_epsilon_is_demoted_within_the_stated_number_of_audits():
    rng = np.random.default_rng(12)
    outcomes = rng.random((400, 5_000)) < 3 * EPSILON
    crossings = monitor.first_crossing(outcomes, null=EPSILON, alpha=ALPHA)
    caught = (crossings > 0) & (crossings <= AUDITS_TO_CATCH_3_EPSILON)
    assert caught.mean() >= 0.95
    # At 10% error (the old check never demoted it) it is caught within ~100 audits.
    broken = rng.random((400, 1_000)) < 0.10
    assert np.percentile(monitor.first_crossing(broken, null=EPSILON, alpha=ALPHA), 95) <= 120


def test_the_lower_bound_crosses_epsilon_exactly_when_the_test_demotes():
    outcomes = [0] * 50 + [1] * 10
    result = monitor.evaluate(scope="7", outcomes=outcomes, epsilon=EPSILON, alpha=ALPHA)
    assert result.breached and result.lower > EPSILON
    assert result.audits == 60 and result.errors == 10 and result.at_audit <= 60
    clean = monitor.evaluate(scope="7", outcomes=[0] * 500, epsilon=EPSILON, alpha=ALPHA)
    assert not clean.breached and clean.lower <= EPSILON and clean.at_audit is None


def test_the_lower_bound_covers_the_true_error():
    rng = np.random.default_rng(13)
    misses = 0
    for _ in range(200):
        outcomes = (rng.random(300) < 0.2).astype(int)
        misses += monitor.lower_bound(outcomes, alpha=ALPHA) > 0.2
    assert misses / 200 <= ALPHA


@pytest.mark.parametrize("audits", [0, 10, 100, 1000, 10_000])
def test_the_audit_rate_starts_high_and_falls_to_the_floor(audits):
    rate = monitor.audit_rate(audits=audits, epsilon=EPSILON, floor=0.02)
    later = monitor.audit_rate(audits=audits * 10 + 10, epsilon=EPSILON, floor=0.02)
    assert 0.02 <= later <= rate <= 0.5
    assert monitor.audit_rate(audits=0, epsilon=EPSILON, floor=0.02) == 0.5
    assert monitor.audit_rate(audits=10**6, epsilon=EPSILON, floor=0.02) == 0.02
    assert monitor.audit_rate(audits=10**6, epsilon=EPSILON, floor=0.02, alarm_rate=0.25) == 0.25
