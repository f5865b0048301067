"""Drift tests on synthetic samples and on real digits (no Django)."""

import numpy as np
import pytest

from mlcore import drift
from mlcore.artifacts import load_artifact, save_artifact
from mlcore.drift_reference import reference_from_artifact
from mlcore.predict import Predictor
from mlcore.shifts import apply_shift

ALPHA = drift.alpha_per_test(0.05, tests=16, looks=40)


def _reference(rng, n=300) -> drift.Reference:
    return drift.Reference(
        labels=["a", "b", "c"],
        label_counts=np.array([100, 100, 100]),
        ood_rate=0.05,
        n_ood=n,
        confidences=rng.beta(8, 1, n),
        embeddings=rng.standard_normal((n, 8)),
        image_stats={"brightness": rng.normal(0.8, 0.05, n), "contrast": rng.normal(0.3, 0.05, n)},
    )


def _window(rng, n=200, *, labels=None, conf=None, ood=0.05, emb_shift=0.0, bright=0.8):
    return drift.Window(
        labels=list(labels if labels is not None else rng.choice(["a", "b", "c"], n)),
        confidences=conf if conf is not None else rng.beta(8, 1, n),
        is_ood=rng.random(n) < ood,
        embeddings=rng.standard_normal((n, 8)) + emb_shift,
        image_stats={
            "brightness": rng.normal(bright, 0.05, n),
            "contrast": rng.normal(0.3, 0.05, n),
        },
    )


def test_bonferroni_level_divides_the_family_rate():
    assert drift.alpha_per_test(0.05, tests=16, looks=40) == pytest.approx(0.05 / 640)
    with pytest.raises(ValueError):
        drift.alpha_per_test(0.0, tests=1, looks=1)


def test_in_control_windows_raise_no_alarm_at_the_bonferroni_level():
    rng = np.random.default_rng(0)
    reference = _reference(rng)
    alarms = []
    for _ in range(20):
        results = drift.run_tests(_window(rng), reference, alpha=ALPHA, seed=1)
        assert {r.statistic for r in results} == {
            "labels",
            "confidence",
            "ood_rate",
            "embedding",
            "brightness",
            "contrast",
        }  # colourfulness/resolution have no reference here, so they are skipped
        alarms += [r.statistic for r in results if r.alarming]
    assert alarms == []


@pytest.mark.parametrize(
    ("statistic", "kwargs"),
    [
        ("labels", {"labels": ["a"] * 150 + ["b"] * 50}),
        ("confidence", {"conf": np.full(200, 0.4)}),
        ("ood_rate", {"ood": 0.5}),
        ("embedding", {"emb_shift": 0.8}),
        ("brightness", {"bright": 0.3}),
    ],
)
def test_each_statistic_alarms_on_its_shift(statistic, kwargs):
    rng = np.random.default_rng(1)
    results = {
        r.statistic: r
        for r in drift.run_tests(_window(rng, **kwargs), _reference(rng), alpha=ALPHA)
    }
    assert results[statistic].alarming, results[statistic]
    assert results[statistic].p_value < ALPHA
    assert results["contrast"].alarming is False


def test_significant_but_tiny_effects_do_not_alarm():
    """10,000 items make a 0.01 brightness difference significant, yet it is tolerated."""
    rng = np.random.default_rng(2)
    reference = _reference(rng, n=5000)
    window = _window(rng, n=5000, bright=0.81)
    (result,) = drift.run_tests(window, reference, alpha=ALPHA, statistics=("brightness",))
    assert result.p_value < ALPHA and not result.alarming
    assert result.detail["min_effect"] == drift.MIN_EFFECT["brightness"]


def test_ood_rate_is_tested_against_the_tolerated_rate():
    rng = np.random.default_rng(3)
    reference = _reference(rng)
    assert drift.ood_tolerated_rate(0.05) == pytest.approx(0.15)
    ok = drift.ood_rate_test(_window(rng, ood=0.10), reference, ALPHA)
    bad = drift.ood_rate_test(_window(rng, ood=0.45), reference, ALPHA)
    assert not ok.alarming and bad.alarming
    assert bad.detail["tolerated_rate"] == pytest.approx(0.15)


def test_mmd_witness_points_at_the_shifted_items_and_onset_finds_the_change():
    rng = np.random.default_rng(4)
    reference = _reference(rng)
    window = _window(rng, n=200)
    window.embeddings[120:] += 1.5  # the last 80 items moved
    result = drift.embedding_test(window, reference, ALPHA, seed=0)
    assert result.alarming
    onset = drift.onset_index(result.item_scores)
    assert 110 <= onset <= 130
    examples = drift.example_indices(result.item_scores, start=onset)
    assert len(examples) == 12 and all(i >= 120 for i in examples)


def test_windows_with_missing_embeddings_use_the_rows_that_have_them():
    rng = np.random.default_rng(5)
    window = _window(rng, n=100)
    window.embeddings[:80] = np.nan
    assert drift.embedding_test(window, _reference(rng), ALPHA) is None  # 20 < MIN_ITEMS
    window.embeddings[:40] = rng.standard_normal((40, 8))
    assert drift.embedding_test(window, _reference(rng), ALPHA).n == 60


def test_onset_of_an_unchanged_series_is_the_window_start():
    assert drift.onset_index(np.zeros(50)) == 0
    assert drift.onset_index(np.r_[np.zeros(30), np.ones(20)]) == 30


def test_projection_is_fixed_and_scale_free():
    x = np.random.default_rng(6).standard_normal((5, 64))
    a, b = drift.project_embeddings(x), drift.project_embeddings(3 * x)
    assert a.shape == (5, drift.PROJECTION_DIM)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    np.testing.assert_allclose(a, drift.project_embeddings(x))


@pytest.fixture(scope="module")
def predictor(artifact):
    return Predictor.from_artifact(artifact.path)


def _window_of(results) -> drift.Window:
    return drift.Window(
        labels=[r.label for r in results],
        confidences=np.array([r.confidence for r in results]),
        is_ood=np.array([r.is_ood for r in results]),
        embeddings=np.array([r.embedding for r in results]),
        image_stats={
            k: np.array([r.image_stats[k] for r in results]) for k in results[0].image_stats
        },
    )


def test_artifact_holds_a_validation_reference(artifact, trained):
    reference = reference_from_artifact(load_artifact(artifact.path))
    n_valid = trained.n_valid
    assert reference.source == "validation"
    assert reference.label_counts.sum() == n_valid
    assert len(reference.confidences) == len(reference.embeddings) == min(n_valid, 1000)
    assert reference.embeddings.shape[1] == drift.PROJECTION_DIM
    for key in drift.IMAGE_STAT_KEYS.values():
        assert len(reference.image_stats[key]) == len(reference.confidences)
    assert 0.0 <= reference.ood_rate <= 0.1


def test_predictions_carry_the_drift_signals(predictor, valid_images):
    (result,) = predictor.predict(valid_images[:1])
    assert len(result.embedding) == drift.PROJECTION_DIM
    assert result.image_stats["colourfulness"] == pytest.approx(0.0, abs=1e-6)  # gray digits
    assert result.image_stats["brightness"] > 0.5  # dark ink on white paper
    assert set(drift.IMAGE_STAT_KEYS.values()) <= set(result.image_stats)


@pytest.mark.parametrize("shift", ["night", "washed", "lowres"])
def test_real_shifted_digits_alarm_and_clean_ones_do_not(artifact, predictor, valid_images, shift):
    reference = reference_from_artifact(load_artifact(artifact.path))
    clean = predictor.predict(valid_images[:120])
    assert not [
        r.statistic
        for r in drift.run_tests(_window_of(clean), reference, alpha=ALPHA)
        if r.alarming
    ]
    shifted = predictor.predict(apply_shift(valid_images[120:180], shift))
    results = drift.run_tests(_window_of(clean[:60] + shifted), reference, alpha=ALPHA)
    assert {r.statistic for r in results if r.alarming} & {"embedding", "ood_rate", "contrast"}


def test_old_artifacts_without_the_drift_reference_still_load(trained, tmp_path):
    legacy_stats = {k: v for k, v in trained.reference_stats.items() if k != "drift"}
    saved = trained.reference_stats, trained.drift_tensors
    trained.reference_stats, trained.drift_tensors = legacy_stats, {}
    try:
        path = save_artifact(trained, tmp_path / "legacy").path
    finally:
        trained.reference_stats, trained.drift_tensors = saved
    reference = reference_from_artifact(load_artifact(path))
    assert reference.source.startswith("training kNN bank")
    assert reference.confidences is None and reference.confidence_histogram["n"] > 0
    assert len(reference.embeddings) > 0 and reference.label_counts.sum() > 0
    rng = np.random.default_rng(0)
    window = drift.Window(
        labels=list(rng.choice(reference.labels, 100)),
        confidences=rng.random(100),
        is_ood=np.zeros(100, bool),
        embeddings=np.full((100, drift.PROJECTION_DIM), np.nan),
        image_stats={"brightness": np.full(100, 0.1)},
    )
    results = {r.statistic: r for r in drift.run_tests(window, reference, alpha=ALPHA)}
    assert {"labels", "confidence", "ood_rate", "brightness"} <= set(results)
    assert results["brightness"].alarming  # z-test on the stored mean: 0.1 is far off
