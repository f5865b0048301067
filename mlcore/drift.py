"""Drift tests: is a window of production predictions distributed like the model's reference?

The design follows Rabanser, Günnemann & Lipton, "Failing Loudly: An Empirical Study of Methods
for Detecting Dataset Shift" (NeurIPS 2019, https://arxiv.org/abs/1810.11953): two-sample tests
on the model's outputs (predicted labels: chi-square test of homogeneity; confidences:
Kolmogorov–Smirnov), the out-of-domain rate (one-sided binomial test), penultimate-layer
embeddings reduced by a Gaussian random projection and compared with a kernel MMD permutation
test (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012,
https://jmlr.org/papers/v13/gretton12a.html), and simple image statistics (KS each).

Every test returns a p-value; the family-wise false-alarm rate is held by Bonferroni over the
statistics, windows and looks of a monitoring horizon (`alpha_per_test`). Significance alone is
not enough: with hundreds of items any real but harmless difference (new writers, a slightly
different camera) becomes significant, so an alarm also needs an effect at least `MIN_EFFECT`
(KS distance, Jensen–Shannon distance, MMD²), and the out-of-domain rate is tested against a
tolerated rate (`ood_tolerated_rate`). The floors were set from the values measured on
in-domain digits from writers the demo model never saw (bench/bench_drift.py prints the largest
ones; docs/benchmarks.md has them).
Each test also scores every window item by how far it sits from the reference, which picks
example items and estimates when the change began (`onset_index`).

Pure numpy/scipy; the reference comes from the artifact (`mlcore.drift_reference`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from mlcore.mmd import mmd_permutation_test

logger = logging.getLogger(__name__)

IMAGE_STATISTICS = ("brightness", "contrast", "colourfulness", "resolution")
STATISTICS = ("labels", "confidence", "ood_rate", "embedding", *IMAGE_STATISTICS)
# The per-image value each image statistic tests (keys of mlcore.reference.image_statistics).
IMAGE_STAT_KEYS = {
    "brightness": "brightness",
    "contrast": "contrast",
    "colourfulness": "colourfulness",
    "resolution": "effective_resolution",
}
PROJECTION_DIM = 32
PROJECTION_SEED = 20190101
MIN_ITEMS = 30
MMD_MAX_WINDOW = 300
MMD_MAX_REFERENCE = 300
MMD_PERMUTATIONS = 1000
# Smallest effect that raises an alarm (the `value` of each test must reach it).
MIN_EFFECT = {
    "labels": 0.15,  # Jensen–Shannon distance of the predicted-label mix
    "confidence": 0.2,  # KS distance
    "ood_rate": 0.0,  # the tolerance is in the null hypothesis instead
    "embedding": 0.015,  # MMD² (RBF kernel, median bandwidth)
    "brightness": 0.2,
    "contrast": 0.2,
    "colourfulness": 0.2,
    "resolution": 0.2,
}
LEGACY_MIN_EFFECT = 0.5  # standardised mean difference, when only reference means are stored


def ood_tolerated_rate(reference_rate: float) -> float:
    """The OOD rate still considered in control: 3x the reference rate, at least +10 points."""
    return min(1.0, max(3.0 * reference_rate, reference_rate + 0.10))


def alpha_per_test(family_alpha: float, *, tests: int, looks: int) -> float:
    """Bonferroni: the per-test level that keeps P(any false alarm) <= family_alpha."""
    if not 0 < family_alpha < 1 or tests < 1 or looks < 1:
        raise ValueError("need 0 < family_alpha < 1, tests >= 1 and looks >= 1")
    return family_alpha / (tests * looks)


@functools.lru_cache(maxsize=8)
@functools.lru_cache(maxsize=8)
def projection_matrix(dim_in: int, *, dim: int = PROJECTION_DIM, seed: int = PROJECTION_SEED):
    """A fixed Gaussian random projection (Johnson–Lindenstrauss), the same for every version.

    Cached (read-only): drawing it costs more than projecting a batch with it."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((dim_in, dim)) / np.sqrt(dim)
    matrix.setflags(write=False)
    return matrix


def project_embeddings(features: np.ndarray, *, dim: int = PROJECTION_DIM) -> np.ndarray:
    """L2-normalise penultimate embeddings and project them to `dim` dimensions (float32)."""
    x = np.asarray(features if features is not None else [], dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    return (x @ projection_matrix(x.shape[1], dim=dim)).astype(np.float32)


@dataclass
class Reference:
    """What a window is compared with: the champion's held-out validation outputs."""

    labels: list[str]
    label_counts: np.ndarray
    ood_rate: float
    n_ood: int
    confidences: np.ndarray | None = None
    confidence_histogram: dict | None = None
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, PROJECTION_DIM)))
    image_stats: dict[str, np.ndarray] = field(default_factory=dict)
    image_summary: dict[str, dict] = field(default_factory=dict)
    source: str = "validation"


@dataclass
class Window:
    """A window of production predictions, oldest first."""

    labels: list[str]
    confidences: np.ndarray
    is_ood: np.ndarray
    embeddings: np.ndarray
    image_stats: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class TestResult:
    """One statistic's test on one window; `alarming` is `p_value < threshold`."""

    statistic: str
    value: float
    p_value: float
    threshold: float
    alarming: bool
    n: int
    detail: dict
    item_scores: np.ndarray  # per window item: how far it sits from the reference (higher = more)


def _result(statistic, value, p_value, alpha, n, detail, scores, *, effect=None) -> TestResult:
    p_value = float(max(p_value, 0.0)) if np.isfinite(p_value) else 1.0
    floor = MIN_EFFECT[statistic] if effect is None else effect
    detail = {**detail, "min_effect": floor}
    return TestResult(
        statistic=statistic,
        value=float(value),
        p_value=p_value,
        threshold=float(alpha),
        alarming=p_value < alpha and abs(float(value)) >= floor,
        n=int(n),
        detail=detail,
        item_scores=np.asarray(scores, dtype=np.float64),
    )


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two discrete distributions."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    p, q = p / max(p.sum(), 1e-12), q / max(q.sum(), 1e-12)
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / b[mask])).sum())

    return float(np.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2)))


def label_test(window: Window, reference: Reference, alpha: float) -> TestResult | None:
    """Predicted-label mix vs the reference's: chi-square test of homogeneity on the counts."""
    index = {label: i for i, label in enumerate(reference.labels)}
    positions = np.array([index.get(label, -1) for label in window.labels], dtype=np.int64)
    known = positions >= 0
    counts = np.bincount(positions[known], minlength=len(reference.labels)).astype(np.float64)
    ref = np.asarray(reference.label_counts, dtype=np.float64)
    keep = (counts + ref) > 0
    if counts.sum() < MIN_ITEMS or ref.sum() == 0 or keep.sum() < 2:
        return None
    table = np.vstack([counts[keep], ref[keep]])
    p_value = sps.chi2_contingency(table, correction=False).pvalue
    w_share, r_share = counts / counts.sum(), ref / ref.sum()
    ratio = np.log((w_share + 0.01) / (r_share + 0.01))
    scores = np.where(known, ratio[np.where(known, positions, 0)], 0.0)
    detail = {
        "jensen_shannon": jensen_shannon(counts, ref),
        "window_share": dict(zip(reference.labels, w_share.round(4).tolist(), strict=True)),
        "reference_share": dict(zip(reference.labels, r_share.round(4).tolist(), strict=True)),
    }
    return _result("labels", detail["jensen_shannon"], p_value, alpha, len(window), detail, scores)


def confidence_test(window: Window, reference: Reference, alpha: float) -> TestResult | None:
    """Confidences vs the reference's: two-sample KS (binned chi-square for old artifacts)."""
    x = np.asarray(window.confidences, dtype=np.float64)
    if len(x) < MIN_ITEMS:
        return None
    if reference.confidences is not None and len(reference.confidences) >= MIN_ITEMS:
        ref = np.asarray(reference.confidences, dtype=np.float64)
        test = sps.ks_2samp(x, ref)
        centre = float(np.median(ref))
        detail = {"ks": float(test.statistic), "window_median": float(np.median(x))}
        detail["reference_median"] = centre
        scores = np.abs(x - centre)
        return _result("confidence", test.statistic, test.pvalue, alpha, len(x), detail, scores)
    hist = reference.confidence_histogram
    if not hist or not hist.get("n"):
        return None
    edges, shares = np.asarray(hist["edges"]), np.asarray(hist["shares"])
    counts, _ = np.histogram(x, bins=edges)
    ref_counts = shares * hist["n"]
    keep = (counts + ref_counts) > 0
    p_value = sps.chi2_contingency(np.vstack([counts[keep], ref_counts[keep]])).pvalue
    value = jensen_shannon(counts, ref_counts)
    detail = {"jensen_shannon": value, "method": "binned chi-square (no reference sample)"}
    centre = float((shares * (edges[:-1] + edges[1:]) / 2).sum())
    return _result("confidence", value, p_value, alpha, len(x), detail, np.abs(x - centre))


def ood_rate_test(window: Window, reference: Reference, alpha: float) -> TestResult | None:
    """Out-of-domain share vs the reference rate: one-sided exact binomial test."""
    flags = np.asarray(window.is_ood, dtype=bool)
    n = len(flags)
    if n < MIN_ITEMS:
        return None
    # A reference rate of 0 (tiny validation set) would make one OOD item significant.
    rate = max(float(reference.ood_rate), 0.5 / max(reference.n_ood, 1))
    tolerated = ood_tolerated_rate(rate)
    k = int(flags.sum())
    p_value = sps.binomtest(k, n, tolerated, alternative="greater").pvalue
    detail = {
        "window_rate": k / n,
        "reference_rate": float(reference.ood_rate),
        "tolerated_rate": tolerated,
        "ood_items": k,
    }
    return _result("ood_rate", k / n, p_value, alpha, n, detail, flags.astype(float))


def _subsample(x: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= limit:
        return x
    return x[np.sort(rng.choice(len(x), size=limit, replace=False))]


def embedding_test(
    window: Window,
    reference: Reference,
    alpha: float,
    *,
    permutations: int = MMD_PERMUTATIONS,
    seed: int = 0,
) -> TestResult | None:
    """Projected penultimate embeddings vs the reference's: kernel MMD permutation test."""
    x = np.asarray(window.embeddings, dtype=np.float64)
    y = np.asarray(reference.embeddings, dtype=np.float64)
    if len(y) < MIN_ITEMS:
        return None
    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(np.isfinite(x).all(axis=1)) if x.ndim == 2 else np.zeros(0, int)
    if len(keep) < MIN_ITEMS:
        return None
    if len(keep) > MMD_MAX_WINDOW:
        keep = np.sort(rng.choice(keep, size=MMD_MAX_WINDOW, replace=False))
    y = _subsample(y, MMD_MAX_REFERENCE, rng)
    value, p_value, witness = mmd_permutation_test(
        x[keep], y, alpha=alpha, permutations=permutations, seed=seed
    )
    scores = np.zeros(len(x))
    scores[keep] = witness
    detail = {"mmd2": value, "reference_source": reference.source, "tested_items": len(keep)}
    return _result("embedding", value, p_value, alpha, len(keep), detail, scores)


def image_stat_test(
    statistic: str, window: Window, reference: Reference, alpha: float
) -> TestResult | None:
    """One image statistic vs the reference: two-sample KS (z-test on the mean for old ones)."""
    key = IMAGE_STAT_KEYS[statistic]
    x = np.asarray(window.image_stats.get(key, []), dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < MIN_ITEMS:
        return None
    ref = reference.image_stats.get(key)
    if ref is not None and len(ref) >= MIN_ITEMS:
        ref = np.asarray(ref, dtype=np.float64)
        mean, std = float(ref.mean()), float(ref.std())
        test = sps.ks_2samp(x, ref)
        value, p_value, effect = float(test.statistic), float(test.pvalue), None
    elif key in reference.image_summary:
        mean, std = reference.image_summary[key]["mean"], reference.image_summary[key]["std"]
        value = (x.mean() - mean) / max(std, 1e-9)
        p_value = float(2 * sps.norm.sf(abs(value) * np.sqrt(len(x))))
        effect = LEGACY_MIN_EFFECT
    else:
        return None
    detail = {"window_mean": float(x.mean()), "reference_mean": mean, "reference_std": std}
    scores = np.abs(np.asarray(window.image_stats[key], dtype=np.float64) - mean) / max(std, 1e-9)
    return _result(
        statistic, value, p_value, alpha, len(x), detail, np.nan_to_num(scores), effect=effect
    )


def run_tests(
    window: Window,
    reference: Reference,
    *,
    alpha: float,
    statistics: tuple[str, ...] = STATISTICS,
    seed: int = 0,
    permutations: int = MMD_PERMUTATIONS,
) -> list[TestResult]:
    """Every requested test that has enough data, at per-test level `alpha`."""
    results = []
    for statistic in statistics:
        if statistic == "labels":
            result = label_test(window, reference, alpha)
        elif statistic == "confidence":
            result = confidence_test(window, reference, alpha)
        elif statistic == "ood_rate":
            result = ood_rate_test(window, reference, alpha)
        elif statistic == "embedding":
            result = embedding_test(window, reference, alpha, permutations=permutations, seed=seed)
        elif statistic in IMAGE_STAT_KEYS:
            result = image_stat_test(statistic, window, reference, alpha)
        else:
            raise ValueError(f"unknown drift statistic {statistic!r}; choose from {STATISTICS}")
        if result is not None:
            results.append(result)
    return results


def onset_index(scores: np.ndarray) -> int:
    """Most likely start of a mean shift in time-ordered scores (0 = before the window).

    The CUSUM / binary-segmentation statistic |mean(s[:t]) - mean(s[t:])| * sqrt(t(n-t)/n)
    (Page 1954, https://doi.org/10.1093/biomet/41.1-2.100); the later part must score higher.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    if n < 4:
        return 0
    prefix = np.cumsum(s)
    t = np.arange(1, n)
    before = prefix[:-1] / t
    after = (prefix[-1] - prefix[:-1]) / (n - t)
    gain = (after - before) * np.sqrt(t * (n - t) / n)
    best = int(np.argmax(gain))
    if gain[best] <= 0:
        return 0
    return best + 1


def example_indices(scores: np.ndarray, *, start: int = 0, limit: int = 12) -> list[int]:
    """The window items after `start` that sit farthest from the reference, most shifted first."""
    s = np.asarray(scores, dtype=np.float64)[start:]
    order = np.argsort(-s, kind="stable")[:limit]
    return [int(start + i) for i in order]
