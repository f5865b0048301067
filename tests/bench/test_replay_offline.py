"""The Fashion-MNIST replay's offline accounting (bench.replay.offline) and its world's
schedule and --shift plug-in (bench.replay.fashion_world): pure functions, no database."""

from __future__ import annotations

import pytest
from PIL import Image

from bench.replay import fashion_world, offline
from bench.replay.offline import Scored


def _scored(pairs: list[tuple[str, float, str]]) -> list[Scored]:
    return [Scored(i, pred, conf, truth) for i, (pred, conf, truth) in enumerate(pairs)]


def test_class_threshold_automates_the_longest_prefix_within_epsilon():
    # 10 "a" predictions by falling confidence; the 8th is wrong.
    items = _scored([("a", 1 - i / 100, "b" if i == 7 else "a") for i in range(10)])
    assert offline.class_threshold(items, 0.0) == pytest.approx(0.94)  # the first 7
    assert offline.class_threshold(items, 0.125) == pytest.approx(0.91)  # 1/8 ≤ .125, 1/10 too
    assert offline.class_threshold(items, 0.1) == pytest.approx(0.91)


def test_class_threshold_none_when_the_top_item_is_wrong_and_ties_are_not_split():
    assert offline.class_threshold(_scored([("a", 0.99, "b"), ("a", 0.5, "a")]), 0.01) is None
    tied = _scored([("a", 0.9, "a"), ("a", 0.9, "b"), ("a", 0.8, "a")])
    assert offline.class_threshold(tied, 0.0) is None  # 0.9 cannot take only the right one


def test_oracle_picks_per_class_thresholds_and_bounds_the_overall_error():
    items = _scored(
        [("shirt", 0.99, "shirt"), ("shirt", 0.98, "coat"), ("shirt", 0.6, "shirt")]
        + [("trouser", 0.7 - i / 1000, "trouser") for i in range(50)]
    )
    thresholds = offline.oracle_thresholds(items, 0.01)
    assert thresholds == {"shirt": 0.99, "trouser": pytest.approx(0.651)}
    automated = offline.automated_by_thresholds(items, thresholds)
    summary = offline.arm_summary(items, automated)
    assert summary["auto"] == 51 and summary["solo_wrong"] == 0
    assert summary["human_decisions"] == 2
    fixed = offline.arm_summary(items, offline.automated_at(items, 0.9))
    assert (fixed["auto"], fixed["solo_wrong"]) == (2, 1)  # the 0.9 rule pays in error


def test_worst_window_is_the_maximum_over_every_window_of_automatic_decisions():
    right = [True] * 1000
    right[600:610] = [False] * 10  # 10 wrong in a row: 2% in the windows that hold them
    worst = offline.worst_window(right, 500)
    assert worst == {"max_error": 0.02, "window": 500, "windows": 501}
    assert offline.worst_window([True, False, True, True], 500)["max_error"] == 0.25
    assert offline.worst_window([], 500)["max_error"] is None


def test_automation_after_a_shift_onset_counts_items_to_the_last_automatic_decision():
    automated = [True] * 10 + [True, False, True, False, False] + [True] * 5
    assert offline.automating_after_onset(automated, 10, 15) == {
        "items_to_last_auto": 3,
        "auto_in_shift": 2,
        "shift_items": 5,
    }
    assert offline.automating_after_onset([False] * 5, 0, 5)["items_to_last_auto"] == 0


def test_shift_plugin_loads_a_function_by_module_and_name():
    shift = fashion_world.shift_load("bench.replay.fashion_world:camera_change")
    image = Image.new("L", (28, 28), color=200)
    shifted = shift(image)
    assert shifted.size == (28, 28) and shifted.getextrema()[1] == 90  # 45% as bright
    assert fashion_world.shift_load("PIL.ImageOps:invert")(image).getpixel((0, 0)) == 55
    for bad in ("camera_change", "bench.replay.fashion_world:nothing", ":f", "m:"):
        with pytest.raises(ValueError):
            fashion_world.shift_load(bad)


def test_the_schedule_covers_the_stream_with_every_phase():
    bounds = fashion_world.phase_bounds(10_000)
    assert bounds["camera"] == (2500, 4000) and bounds["class-mix"] == (6000, 10_000)
    phases = [fashion_world.phase_at(i, 10_000) for i in range(10_000)]
    assert [phases.count(name) for name in bounds] == [b - a for a, b in bounds.values()]


def test_the_oracle_that_pays_for_evidence_waits_for_enough_labels_per_class_or_pooled():
    # Class a: 5 items above its threshold, then automation; class b below its threshold never.
    items = _scored(
        [("a", 0.99, "a")] * 3 + [("b", 0.99, "b"), ("a", 0.4, "a")] + [("a", 0.99, "a")] * 3
    )
    thresholds = {"a": 0.9, "b": 0.95}
    per_class = offline.paid_for(items, thresholds, 3)
    assert per_class == [False, False, False, False, False, True, True, True]
    pooled = offline.paid_for(items, thresholds, 3, pooled=True)
    assert pooled == [False, False, False, True, False, True, True, True]
    # Never more than the oracle itself, and the same with nothing to pay.
    oracle = offline.automated_by_thresholds(items, thresholds)
    assert all(o or not p for o, p in zip(oracle, per_class, strict=True))
    assert offline.paid_for(items, thresholds, 0) == oracle


def test_rules_without_hindsight_automate_only_once_their_labels_certify_them():
    from bench.replay import certify
    from reviewapp.rollout import ltt

    items = _scored([("a", 0.99, "a")] * 1000)
    flags = {
        pooled: certify.certified_flags(
            items, labels=["a", "b"], epsilon=0.01, delta=0.05, pooled=pooled
        )
        for pooled in (False, True)
    }
    # Recomputed every 25 items: the first automated item is the first recompute that has the
    # fewest error-free labels Learn then Test needs (299 pooled at δ; 368 per class at δ/2).
    assert ltt.min_labels(epsilon=0.01, level=0.05) == 299
    assert ltt.min_labels(epsilon=0.01, level=0.025) == 368
    assert flags[True].index(True) == 300 and flags[False].index(True) == 375
    assert all(flags[True][300:]) and all(flags[False][375:])
    # A class the model gets wrong one time in five is never certified, alone or pooled.
    bad = _scored([("a", 0.99, "a" if i % 5 else "b") for i in range(1000)])
    assert not any(
        certify.certified_flags(bad, labels=["a"], epsilon=0.01, delta=0.05, pooled=True)
    )
    assert certify.realised_error(bad, [True] * 1000) == pytest.approx(0.2)
