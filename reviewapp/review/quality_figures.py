"""Per-reviewer quality figures for a project: accuracy on gold, agreement with peers, speed, undo.

- Accuracy on gold: decisions on gold tasks (``ReviewTask.gold_check``) whose label is the gold
  item's known label, over all answered gold tasks (skips and undone decisions left out).
- Agreement with peers, chance-corrected:
  * Cohen's kappa for every pair of reviewers on the items both decided (their first live
    decision each), from scikit-learn (Cohen 1960, doi:10.1177/001316446002000104). A pair with
    fewer than two shared items, or one where kappa is undefined (both used one same label
    throughout), has none. A reviewer's figure is the mean of their pairs' kappas, weighted by
    shared items.
  * Fleiss' kappa for the project over items with at least two reviewers, from statsmodels
    (Fleiss 1971, doi:10.1037/h0031619). Fleiss' kappa needs the same number of ratings per item,
    so each item counts its first two reviewers' labels; a third reviewer is left out.
  Out of domain counts as a label of its own.
- Speed: decisions per hour of desk time (the sum of the decisions' measured durations) and the
  median seconds per decision; decisions without a measured duration are left out of both.
- Undo rate: undone decisions over all decisions (skips left out).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations

import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from reviewapp.models import Decision, Project, Verdict

OOD = "<out of domain>"


@dataclass
class ReviewerQuality:
    """One reviewer's figures in one project."""

    reviewer_id: int
    username: str
    decisions: int = 0
    gold_n: int = 0
    gold_correct: int = 0
    kappa: float | None = None
    kappa_items: int = 0
    per_hour: float | None = None
    median_seconds: float | None = None
    undone: int = 0
    below_bar: bool = False

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_n if self.gold_n else None

    @property
    def undo_rate(self) -> float | None:
        total = self.decisions + self.undone
        return self.undone / total if total else None


@dataclass
class PairAgreement:
    first: str
    second: str
    items: int
    kappa: float | None


@dataclass
class ProjectQuality:
    reviewers: list[ReviewerQuality] = field(default_factory=list)
    pairs: list[PairAgreement] = field(default_factory=list)
    fleiss: float | None = None
    fleiss_items: int = 0


def _kappa(first: list[str], second: list[str]) -> float | None:
    if len(first) < 2:
        return None
    with warnings.catch_warnings():  # 0/0 when both used one label throughout: no kappa
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(cohen_kappa_score(first, second))
    return None if math.isnan(value) else value


def fleiss_over(ratings: dict[int, list[str]]) -> tuple[float | None, int]:
    """Fleiss' kappa over items with at least two ratings (the first two each); and how many."""
    rows = [labels[:2] for labels in ratings.values() if len(labels) >= 2]
    if not rows:
        return None, 0
    table, _ = aggregate_raters(np.array(rows, dtype=object))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(fleiss_kappa(table, method="fleiss"))
    return (None if math.isnan(value) else value), len(rows)


def _rows(project: Project, since: datetime | None):
    decisions = Decision.objects.filter(item__project=project)
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    return (
        decisions.exclude(verdict=Verdict.SKIP)
        .order_by("created_at", "pk")
        .values_list(
            "reviewer_id",
            "reviewer__username",
            "item_id",
            "label",
            "duration_ms",
            "undone_at",
            "task__gold_check",
            "item__gold_label",
        )
    )


def project_quality(*, project: Project, since: datetime | None = None) -> ProjectQuality:
    """Every reviewer's figures in the project, and the pairwise and project-wide agreement.

    ``since``: only decisions made from then on (the quality page's window); all by default."""
    people: dict[int, ReviewerQuality] = {}
    durations: dict[int, list[float]] = defaultdict(list)
    labels: dict[int, dict[int, str]] = defaultdict(dict)  # reviewer -> item -> first label
    raters: dict[int, list[str]] = defaultdict(list)  # item -> labels, one per reviewer
    for reviewer_id, username, item_id, label, duration_ms, undone_at, gold, gold_label in _rows(
        project, since
    ):
        person = people.setdefault(reviewer_id, ReviewerQuality(reviewer_id, username))
        if undone_at is not None:
            person.undone += 1
            continue
        person.decisions += 1
        if duration_ms is not None:
            durations[reviewer_id].append(duration_ms / 1000)
        if gold:
            person.gold_n += 1
            person.gold_correct += int(label == gold_label)
        if item_id not in labels[reviewer_id]:
            labels[reviewer_id][item_id] = label or OOD
            raters[item_id].append(label or OOD)
    result = ProjectQuality()
    weighted: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for first, second in combinations(sorted(people), 2):
        shared = sorted(labels[first].keys() & labels[second].keys())
        if not shared:
            continue
        kappa = _kappa([labels[first][i] for i in shared], [labels[second][i] for i in shared])
        pair = PairAgreement(people[first].username, people[second].username, len(shared), kappa)
        result.pairs.append(pair)
        if kappa is not None:
            weighted[first].append((kappa, len(shared)))
            weighted[second].append((kappa, len(shared)))
    for reviewer_id, person in people.items():
        if weighted[reviewer_id]:
            person.kappa_items = sum(n for _, n in weighted[reviewer_id])
            person.kappa = sum(k * n for k, n in weighted[reviewer_id]) / person.kappa_items
        seconds = durations[reviewer_id]
        if seconds:
            person.median_seconds = statistics.median(seconds)
            person.per_hour = 3600 * len(seconds) / sum(seconds) if sum(seconds) else None
        person.below_bar = _below_bar(project, person)
    result.reviewers = sorted(people.values(), key=lambda p: p.username)
    result.fleiss, result.fleiss_items = fleiss_over(raters)
    return result


def _below_bar(project: Project, person: ReviewerQuality) -> bool:
    """The same rule as quality.reviewer_below_bar, on the figures already counted."""
    if project.gold_min_accuracy <= 0 or person.gold_n < max(project.gold_min_n, 1):
        return False
    return person.gold_correct / person.gold_n < project.gold_min_accuracy
