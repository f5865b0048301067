"""The item-level guard: an item that does not look like the training data goes to a person.

Pure: from what the champion said about one item (its OOD flag and score), the item's image
statistics (mlcore.reference.image_statistics: brightness, contrast, colour, gray share,
effective resolution, width, height) and the champion's ``DomainProfile`` (built from the
per-image statistics of its validation sample, the drift reference stored in its artifact:
mlcore/drift_reference.py), say in one line why the item is out of the training domain, or None.
The router asks it in every stage, before the stage's own rule, so an odd item reaches a person
one by one without waiting for a drift window to fill (issue 18, point 4).

The acceptance range of each statistic is the reference sample's 0.1%-99.9% quantile range
widened on both sides by half its width (at least ``FLOORS[name]``): a rule on the tails of a
known sample, not a fitted density, so its false positive rate on in-domain images is measured
(tests/reviewapp/rollout/test_guard.py, on the digits demo's own held-out images), not assumed.
A constant statistic (every training image 8x8 px, every one grayscale) gives a range of one
value: a frame of a different size or colour mode is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from reviewapp.rollout.policy import Policy, Scored

QUANTILES = (0.001, 0.999)
WIDEN = 0.5  # share of the quantile range added on each side
# Least slack per statistic (statistics in [0, 1] get 0.05; sizes and resolution none).
FLOORS = {
    "brightness": 0.05,
    "contrast": 0.05,
    "saturation": 0.05,
    "colourfulness": 0.05,
    "gray_share": 0.05,
}
SIZE = ("width", "height")


@dataclass(frozen=True)
class DomainProfile:
    """Acceptance ranges of the per-image statistics of a model version's reference images."""

    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    observed: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_samples(cls, samples: Mapping[str, Sequence[float]]) -> DomainProfile:
        """From each statistic's reference values (the drift reference's sample)."""
        ranges, observed = {}, {}
        for name, values in samples.items():
            x = np.asarray(values, dtype=np.float64)
            if x.size == 0:
                continue
            lo, hi = (float(q) for q in np.quantile(x, QUANTILES))
            margin = max(WIDEN * (hi - lo), FLOORS.get(name, 0.0))
            ranges[name] = (lo - margin, hi + margin)
            observed[name] = (float(x.min()), float(x.max()))
        return cls(ranges=ranges, observed=observed)

    @classmethod
    def from_summary(cls, summary: Mapping[str, Mapping[str, float]]) -> DomainProfile:
        """From a summary (mean, std, quartiles) when an old artifact kept no sample: mean +- 6
        standard deviations (at least the floor), a looser rule for a poorer reference."""
        ranges, observed = {}, {}
        for name, row in summary.items():
            mean, std = float(row["mean"]), float(row.get("std", 0.0))
            margin = max(6 * std, FLOORS.get(name, 0.0))
            ranges[name] = (mean - margin, mean + margin)
            observed[name] = (float(row.get("p25", mean)), float(row.get("p75", mean)))
        return cls(ranges=ranges, observed=observed)


@dataclass(frozen=True)
class Looks:
    """What the guard needs of one item beside the prediction: its statistics and the profile."""

    image_stats: Mapping[str, float]
    profile: DomainProfile


def _outside(looks: Looks, name: str) -> bool:
    value = looks.image_stats.get(name)
    bounds = looks.profile.ranges.get(name)
    return value is not None and bounds is not None and not bounds[0] <= value <= bounds[1]


def _size_reason(looks: Looks) -> str | None:
    if not any(_outside(looks, name) for name in SIZE):
        return None
    stats, seen = looks.image_stats, looks.profile.observed
    trained = "×".join(_span(*seen[name], "{:.0f}") for name in SIZE if name in seen)
    return (
        f"a {stats.get('width', 0):.0f}×{stats.get('height', 0):.0f} px frame; "
        f"the training images were {trained} px"
    )


def _span(lo: float, hi: float, fmt: str) -> str:
    return (
        fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"
    )


def _colour_reason(looks: Looks) -> str | None:
    if not _outside(looks, "gray_share"):
        return None
    value, (lo, hi) = looks.image_stats["gray_share"], looks.profile.observed["gray_share"]
    if value < lo:
        return f"a colour image ({value:.0%} gray pixels); the training images were {lo:.0%}+ gray"
    return f"a grayscale image ({value:.0%} gray pixels); the training images were ≤{hi:.0%} gray"


def _stat_reason(looks: Looks) -> str | None:
    for name in sorted(looks.profile.ranges):
        if name in SIZE or name == "gray_share" or not _outside(looks, name):
            continue
        value, (lo, hi) = looks.image_stats[name], looks.profile.observed[name]
        side = "below" if value < lo else "above"
        shown = name.replace("_", " ")
        return f"{shown} {value:.3g} far {side} the training images' {lo:.3g}–{hi:.3g}"
    return None


def out_of_domain_reason(
    *, prediction: Scored, policy: Policy, looks: Looks | None = None
) -> str | None:
    """One line saying why the item is out of the training domain, or None when it looks in."""
    if not policy.in_domain(prediction):
        over = "" if policy.ood_threshold is None else f" (threshold {policy.ood_threshold:.3g})"
        return f"out-of-domain score {prediction.ood_score:.3g} over the champion's threshold{over}"
    if looks is None:
        return None
    return _size_reason(looks) or _colour_reason(looks) or _stat_reason(looks)
