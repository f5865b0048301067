"""What the replay computes offline from the predictions one run recorded (no database here):
the oracle's per-class thresholds, the fixed-threshold and all-manual arms, and the worst
window of automatic decisions.

The oracle (arm d) is the most a selective classifier could automate at error ε with
hindsight: for each predicted class, the lowest confidence threshold whose error on the
stream's true labels, among that class's items at or above it, is at most ε (so the overall
solo error is at most ε too). It uses the predictions of the champions the run actually had,
in their order. A cut only falls between distinct confidences (items of equal confidence are
automated together or not at all).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scored:
    """One streamed item as the champion of its time saw it, and its truth."""

    index: int
    predicted: str
    confidence: float
    truth: str

    @property
    def right(self) -> bool:
        return self.predicted == self.truth


def class_threshold(items: Sequence[Scored], epsilon: float) -> float | None:
    """The lowest confidence threshold automating the most of `items` (one predicted class)
    with error ≤ `epsilon` among those automated; None when no threshold qualifies."""
    ranked = sorted(items, key=lambda s: -s.confidence)
    best, wrong = None, 0
    for i, item in enumerate(ranked):
        wrong += not item.right
        tie_follows = i + 1 < len(ranked) and ranked[i + 1].confidence == item.confidence
        if not tie_follows and wrong <= epsilon * (i + 1):
            best = item.confidence
    return best


def oracle_thresholds(items: Sequence[Scored], epsilon: float) -> dict[str, float]:
    """Per predicted class, the hindsight threshold (classes with none are left out)."""
    by_class: dict[str, list[Scored]] = defaultdict(list)
    for item in items:
        by_class[item.predicted].append(item)
    found = {label: class_threshold(group, epsilon) for label, group in by_class.items()}
    return {label: t for label, t in found.items() if t is not None}


def paid_for(
    items: Sequence[Scored], thresholds: dict[str, float], needed: int, *, pooled: bool = False
) -> list[bool]:
    """The oracle's thresholds, but a class is automated only once `needed` items the rule
    would automate have gone by (labelled by people, none of them wrong); with `pooled`, once
    `needed` such items of any class have. A bound on what any procedure that certifies its
    thresholds on error-free labels (Learn then Test: ``ltt.min_labels``) could automate: it
    knows the best thresholds and never draws an error, and still has to see the labels."""
    seen: dict[str, int] = defaultdict(int)
    flags = []
    for s in items:
        eligible = s.confidence >= thresholds.get(s.predicted, float("inf"))
        key = "" if pooled else s.predicted
        flags.append(eligible and seen[key] >= needed)
        seen[key] += eligible
    return flags


def automated_by_thresholds(items: Sequence[Scored], thresholds: dict[str, float]) -> list[bool]:
    """Which items a per-class threshold rule automates."""
    return [s.confidence >= thresholds.get(s.predicted, float("inf")) for s in items]


def automated_at(items: Sequence[Scored], threshold: float) -> list[bool]:
    """Which items one fixed confidence threshold automates."""
    return [s.confidence >= threshold for s in items]


def worst_window(solo_right: Sequence[bool], window: int = 500) -> dict[str, Any]:
    """The highest error rate over every run of `window` consecutive automatic decisions
    (in stream order; all of them when there are fewer)."""
    wrong = [not ok for ok in solo_right]
    if not wrong:
        return {"max_error": None, "window": 0, "windows": 0}
    size = min(window, len(wrong))
    count = sum(wrong[:size])
    worst = count
    for i in range(size, len(wrong)):
        count += wrong[i] - wrong[i - size]
        worst = max(worst, count)
    return {"max_error": worst / size, "window": size, "windows": len(wrong) - size + 1}


def arm_summary(items: Sequence[Scored], automated: Sequence[bool]) -> dict[str, Any]:
    """Automation, solo error and its worst 500-window for an offline arm; every item it does
    not automate counts as one human decision."""
    solo = [s.right for s, auto in zip(items, automated, strict=True) if auto]
    wrong = len(solo) - sum(solo)
    return {
        "items": len(items),
        "auto": len(solo),
        "automation_rate": len(solo) / len(items) if items else None,
        "solo_wrong": wrong,
        "solo_error": wrong / len(solo) if solo else None,
        "window": worst_window(solo),
        "human_decisions": len(items) - len(solo),
    }


def stream_summary(
    automated: Sequence[bool], right: Sequence[bool], indices: Sequence[int]
) -> dict[str, Any]:
    """Automation and solo error over the stream positions `indices` (flags by position)."""
    solo = [right[i] for i in indices if automated[i]]
    wrong = len(solo) - sum(solo)
    return {
        "items": len(indices),
        "auto": len(solo),
        "automation_rate": len(solo) / len(indices) if indices else None,
        "solo_wrong": wrong,
        "solo_error": wrong / len(solo) if solo else None,
    }


def automating_after_onset(automated: Sequence[bool], start: int, end: int) -> dict[str, Any]:
    """How long automation went on once a shift began at `start` (until `end`): the items from
    the onset to the last automatic decision inside the shift (0: none), and how many there were."""
    inside = [i for i in range(start, end) if automated[i]]
    return {
        "items_to_last_auto": inside[-1] - start + 1 if inside else 0,
        "auto_in_shift": len(inside),
        "shift_items": end - start,
    }


def series(automated: Sequence[bool], right: Sequence[bool], window: int) -> list[dict]:
    """Automation rate and solo error per block of `window` consecutive stream positions."""
    points = []
    for start in range(0, len(automated), window):
        block = range(start, min(start + window, len(automated)))
        numbers = stream_summary(automated, right, block)
        points.append({"start": start, "end": block.stop, **numbers})
    return points
