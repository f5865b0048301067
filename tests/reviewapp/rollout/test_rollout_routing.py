"""The pure router: sticky shares, deterministic audits, priority labels in every stage."""

import random

import pytest

from reviewapp.models import ReviewReason, Stage
from reviewapp.rollout import routing
from reviewapp.rollout.policy import Policy, Scored

LABELS = tuple(str(d) for d in range(10))
CONFIDENT = Scored(label="3", confidence=0.99)
KEYS = [f"item-{i}" for i in range(20_000)]


def _policy(**overrides) -> Policy:
    base = dict(stage=Stage.PARTIAL, labels=LABELS, confidence_threshold=0.9, audit_rate=0.0)
    return Policy(**{**base, **overrides})


def _automated(keys, policy) -> set[str]:
    return {
        key
        for key in keys
        if routing.route(
            prediction=CONFIDENT,
            policy=policy,
            buckets=routing.Buckets.of(project_id=1, key=key),
        ).auto_accept
    }


def test_raising_the_share_keeps_every_automated_item_and_lowering_removes_only_top_buckets():
    shares = [0.1, 0.25, 0.5, 0.25, 0.05]
    sets = [_automated(KEYS, _policy(traffic_share=share)) for share in shares]
    assert sets[0] <= sets[1] <= sets[2]  # raising: the first 10% stay in
    assert sets[3] <= sets[2] and sets[4] <= sets[3]  # lowering: a subset remains
    assert sets[1] == sets[3]  # sticky: back to 25% is exactly the same items
    removed = sets[2] - sets[3]
    kept_max = max(routing.Buckets.of(project_id=1, key=k).traffic for k in sets[3])
    assert min(routing.Buckets.of(project_id=1, key=k).traffic for k in removed) > kept_max
    for share, automated in zip(shares, sets, strict=True):
        assert abs(len(automated) / len(KEYS) - share) < 0.015


def test_buckets_depend_on_the_project():
    one = _automated(KEYS[:2000], _policy(traffic_share=0.3))
    other = {
        key
        for key in KEYS[:2000]
        if routing.route(
            prediction=CONFIDENT,
            policy=_policy(traffic_share=0.3),
            buckets=routing.Buckets.of(project_id=2, key=key),
        ).auto_accept
    }
    assert one != other


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.3])
def test_audit_rate_converges_to_its_setting_and_is_deterministic(rate):
    policy = _policy(stage=Stage.AUTOMATED, audit_rate=rate)
    counts = []
    for n in (1000, 20_000):
        routes = [
            routing.route(
                prediction=CONFIDENT, policy=policy, buckets=routing.Buckets.of(project_id=5, key=k)
            )
            for k in KEYS[:n]
        ]
        audited = [r for r in routes if r.reason == ReviewReason.AUDIT]
        assert all(r.audit_probability == rate for r in routes)
        counts.append(abs(len(audited) / n - rate))
    assert counts[1] < 3 * (rate * (1 - rate) / 20_000) ** 0.5 + 1e-9
    again = routing.route(
        prediction=CONFIDENT, policy=policy, buckets=routing.Buckets.of(project_id=5, key=KEYS[0])
    )
    first = routing.route(
        prediction=CONFIDENT, policy=policy, buckets=routing.Buckets.of(project_id=5, key=KEYS[0])
    )
    assert again == first


def test_audit_and_traffic_draws_are_independent():
    # Among automated items (traffic bucket < 50%) the audit share still matches the rate.
    policy = _policy(traffic_share=0.5, audit_rate=0.2)
    inside = [k for k in KEYS if routing.Buckets.of(project_id=1, key=k).traffic < 0.5]
    routes = [
        routing.route(
            prediction=CONFIDENT, policy=policy, buckets=routing.Buckets.of(project_id=1, key=k)
        )
        for k in inside
    ]
    share = sum(r.reason == ReviewReason.AUDIT for r in routes) / len(routes)
    assert abs(share - 0.2) < 0.02


@pytest.mark.parametrize("stage", [s for s, _ in Stage.choices])
@pytest.mark.parametrize("kill_switch", [False, True])
def test_priority_labels_always_reach_a_human_first(stage, kill_switch):
    rng = random.Random(stage)
    policy = _policy(
        stage=stage,
        traffic_share=1.0,
        audit_rate=0.0,
        priority_labels=frozenset({"7"}),
        kill_switch=kill_switch,
    )
    for key in KEYS[:500]:
        buckets = routing.Buckets.of(project_id=3, key=key)
        said = Scored(label="7", confidence=rng.uniform(0.0, 1.0), is_ood=rng.random() < 0.3)
        result = routing.route(prediction=said, policy=policy, buckets=buckets)
        assert result.action == routing.ALERT and result.reason == ReviewReason.PRIORITY
        assert result.priority == 100 and not result.auto_accept
        # A challenger that sees a priority label raises it too.
        other = routing.route(prediction=CONFIDENT, policy=policy, buckets=buckets, challenger=said)
        assert other.reason == ReviewReason.PRIORITY


def test_reasons_in_the_automating_stages():
    policy = _policy(
        stage=Stage.PARTIAL,
        traffic_share=1.0,
        class_thresholds={"3": 0.999},
        ood_threshold=0.5,
    )
    buckets = routing.Buckets(traffic=0.1, audit=0.9, ab=0.9)

    def reason(scored, **kw):
        return routing.route(prediction=scored, policy=policy, buckets=buckets, **kw).reason

    assert reason(Scored(label="3", confidence=0.99)) == ReviewReason.LOW_CONFIDENCE  # per class
    assert reason(Scored(label="4", confidence=0.99)) == ""  # auto-accepted
    assert reason(Scored(label="4", confidence=0.5)) == ReviewReason.LOW_CONFIDENCE
    assert reason(Scored(label="4", confidence=0.99, is_ood=True)) == ReviewReason.OUT_OF_DOMAIN
    assert reason(Scored(label="4", confidence=0.99, ood_score=0.7)) == ReviewReason.OUT_OF_DOMAIN
    challenger = Scored(label="5", confidence=0.99)
    assert reason(Scored(label="4", confidence=0.99), challenger=challenger) == (
        ReviewReason.DISAGREEMENT
    )
    outside = routing.Buckets(traffic=0.9, audit=0.9, ab=0.9)
    partial = _policy(stage=Stage.PARTIAL, traffic_share=0.5)
    assert (
        routing.route(prediction=CONFIDENT, policy=partial, buckets=outside).reason
        == ReviewReason.SUPERVISED
    )
    automated = _policy(stage=Stage.AUTOMATED, traffic_share=0.0)
    assert routing.route(prediction=CONFIDENT, policy=automated, buckets=outside).auto_accept
    for stage, expected in ((Stage.SHADOW, "shadow"), (Stage.SUPERVISED, "supervised")):
        assert (
            routing.route(
                prediction=CONFIDENT, policy=_policy(stage=stage, traffic_share=1), buckets=buckets
            ).reason
            == expected
        )


def test_the_challenger_acts_on_its_sticky_ab_share():
    policy = _policy(stage=Stage.AUTOMATED, ab_share=0.3)
    challenger = Scored(label="3", confidence=0.97)
    acting = [
        routing.route(
            prediction=CONFIDENT,
            policy=policy,
            buckets=routing.Buckets.of(project_id=9, key=k),
            challenger=challenger,
        ).acting
        for k in KEYS[:5000]
    ]
    assert abs(acting.count(routing.CHALLENGER) / len(acting) - 0.3) < 0.03


def test_one_class_is_automated_while_another_stays_with_people_blind():
    # As reviewapp.rollout.automation leaves them: class 3 earned a threshold, class 5 did not.
    policy = _policy(
        stage=Stage.AUTOMATED,
        class_thresholds={"3": 0.97, "5": 2.0},
        class_audit_rates={"3": 0.25},
        audit_rate=0.02,
    )
    routes = {
        label: [
            routing.route(
                prediction=Scored(label=label, confidence=0.999),
                policy=policy,
                buckets=routing.Buckets.of(project_id=4, key=k),
            )
            for k in KEYS[:4000]
        ]
        for label in ("3", "5")
    }
    automated = [r for r in routes["3"] if r.auto_accept]
    audited = [r for r in routes["3"] if r.reason == ReviewReason.AUDIT]
    assert abs(len(audited) / 4000 - 0.25) < 0.03  # the class's own (adaptive) audit rate
    assert len(automated) + len(audited) == 4000
    assert all(r.audit_probability == 0.25 for r in automated + audited)
    # Class 5 never goes to the model, however confident; it stays in shadow for more evidence.
    assert not any(r.auto_accept for r in routes["5"])
    assert {r.reason for r in routes["5"]} == {ReviewReason.SHADOW}
    below = routing.route(
        prediction=Scored(label="3", confidence=0.96),
        policy=policy,
        buckets=routing.Buckets(traffic=0.1, audit=0.9, ab=0.9),
    )
    assert below.reason == ReviewReason.LOW_CONFIDENCE


def test_stages_are_reached_per_class_and_uncertified_classes_stay_blind():
    # In the supervised stage the certified class is reviewed with the suggestion shown; a class
    # with no threshold stays in shadow, and shadow reviews hide the guess in every stage.
    policy = _policy(stage=Stage.SUPERVISED, class_thresholds={"3": 0.97, "5": 2.0})
    buckets = routing.Buckets(traffic=0.1, audit=0.9, ab=0.9)
    three = routing.route(
        prediction=Scored(label="3", confidence=0.99), policy=policy, buckets=buckets
    )
    five = routing.route(
        prediction=Scored(label="5", confidence=0.99), policy=policy, buckets=buckets
    )
    assert (three.reason, five.reason) == (ReviewReason.SUPERVISED, ReviewReason.SHADOW)
    for stage in (Stage.SUPERVISED, Stage.PARTIAL, Stage.AUTOMATED):
        assert not routing.suggestion_visible(stage=stage, kill_switch=False, reason="shadow")
        assert routing.suggestion_visible(stage=stage, kill_switch=False, reason="supervised")
