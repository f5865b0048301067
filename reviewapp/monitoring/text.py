"""One sentence per drift alarm: which statistic, how far from the reference, since when."""

from __future__ import annotations

from datetime import datetime

from reviewapp.models import DriftStatistic, DriftWindow

_IMAGE_NAMES = {
    "brightness": "mean brightness",
    "contrast": "mean contrast",
    "colourfulness": "mean colourfulness",
    "resolution": "mean effective resolution",
}


def _how_far(statistic: str, value: float, detail: dict) -> str:
    if statistic == "labels":
        window, reference = detail.get("window_share", {}), detail.get("reference_share", {})
        label = max(window, key=lambda k: abs(window[k] - reference.get(k, 0.0)), default="")
        return (
            f"Jensen–Shannon distance {value:.2f}; label {label!r} is "
            f"{window.get(label, 0):.0%} of predictions vs {reference.get(label, 0):.0%} "
            "in the reference"
        )
    if statistic == "confidence":
        return (
            f"median confidence {detail.get('window_median', 0):.2f} vs "
            f"{detail.get('reference_median', 0):.2f} in the reference (KS distance {value:.2f})"
        )
    if statistic == "ood_rate":
        return (
            f"out-of-domain rate {detail['window_rate']:.0%} vs {detail['reference_rate']:.0%} "
            f"in the reference (tolerated up to {detail['tolerated_rate']:.0%})"
        )
    if statistic == "embedding":
        return f"MMD² {value:.3f} between penultimate-layer embeddings and the reference"
    return (
        f"{_IMAGE_NAMES[statistic]} {detail['window_mean']:.3g} vs "
        f"{detail['reference_mean']:.3g} in the reference (KS distance {value:.2f})"
    )


def alarm_summary(*, result, window: str, onset_at: datetime) -> str:
    """E.g. "Brightness drifted: mean brightness 0.21 vs 0.86 in the reference ... since ..."."""
    label = DriftStatistic(result.statistic).label
    scope = DriftWindow(window).label.lower()
    return (
        f"{label} drifted: {_how_far(result.statistic, result.value, result.detail)}, "
        f"over {scope} ({result.n} items, p={result.p_value:.1e} < {result.threshold:.1e}), "
        f"since {onset_at:%Y-%m-%d %H:%M} UTC."
    )
