"""Frozen training snapshots: which items, with which labels, under the project's refresh policy.

A snapshot is rows ``[item_id, label]`` plus ``info`` (the policy applied, what it dropped, and
the frozen gold and holdout sets). The train/validation side of an item is a pure function of its
key (``ml.is_validation``), so a growing dataset never moves an old validation item into training.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from reviewapp import ml
from reviewapp.models import DecidedBy, Item, Outcome, Project
from reviewapp.rollout import stats

logger = logging.getLogger(__name__)

OOD_LABEL = "out-of-domain"
HOLDOUT_SIZE = 200


@dataclass(frozen=True)
class Snapshot:
    """Rows to train on, and what the refresh policy did to get there."""

    rows: list[list[Any]]
    info: dict[str, Any]


@dataclass(frozen=True)
class _Labeled:
    item_id: int
    key: str
    label: str
    labeled_at: datetime
    human: bool


def snapshot_hash(rows: list[list[Any]]) -> str:
    """A stable digest of a snapshot's rows."""
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def recency_weight(*, age_days: float, half_life_days: float | None) -> float:
    """Exponential recency weight 2^(-age / half-life); 1.0 without a half-life."""
    if not half_life_days:
        return 1.0
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def _labeled_items(*, project: Project) -> tuple[dict[int, _Labeled], int]:
    """Base-set labels overridden by human outcomes; returns (rows by item id, OOD excluded)."""
    rows = {
        item_id: _Labeled(item_id, key, label, created, human=False)
        for item_id, key, label, created in Item.objects.filter(project=project)
        .exclude(base_label="")
        .values_list("id", "key", "base_label", "created_at")
    }
    outcomes = Outcome.objects.filter(item__project=project, decided_by=DecidedBy.HUMAN)
    ood_excluded = 0
    for item_id, key, label, is_ood, created in outcomes.values_list(
        "item_id", "item__key", "label", "is_out_of_domain", "created_at"
    ):
        if is_ood and not project.training_ood_as_class:
            rows.pop(item_id, None)
            ood_excluded += 1
            continue
        rows[item_id] = _Labeled(item_id, key, OOD_LABEL if is_ood else label, created, human=True)
    return rows, ood_excluded


def _apply_refresh(
    *, project: Project, rows: list[_Labeled], now: datetime
) -> tuple[list[_Labeled], dict[str, int]]:
    """Maximum age and recency weighting (human labels; the base set is the anchor), then cap."""
    dropped = {"age": 0, "recency": 0, "cap": 0}
    kept = []
    for row in rows:
        age_days = (now - row.labeled_at).total_seconds() / 86400
        if row.human and project.refresh_max_age_days is not None:
            if now - row.labeled_at > timedelta(days=project.refresh_max_age_days):
                dropped["age"] += 1
                continue
        weight = recency_weight(age_days=age_days, half_life_days=project.refresh_half_life_days)
        if row.human and stats.unit_hash("recency", row.key) >= weight:
            dropped["recency"] += 1
            continue
        kept.append(row)
    cap = project.refresh_per_class_cap
    if cap:
        newest_first = sorted(kept, key=lambda r: (r.labeled_at, r.item_id), reverse=True)
        per_class: dict[str, int] = {}
        capped = []
        for row in newest_first:
            per_class[row.label] = per_class.get(row.label, 0) + 1
            if per_class[row.label] <= cap:
                capped.append(row)
        dropped["cap"] = len(kept) - len(capped)
        kept = capped
    return kept, dropped


def snapshot_freeze(
    *, project: Project, seed: int = 42, valid_pct: float = 0.2, now: datetime | None = None
) -> Snapshot:
    """Freeze the project's labeled data now, under its refresh policy, with gold and holdout."""
    now = now or timezone.now()
    labeled, ood_excluded = _labeled_items(project=project)
    kept, dropped = _apply_refresh(project=project, rows=list(labeled.values()), now=now)
    humans = {r.item_id for r in labeled.values() if r.human}
    validation = {
        r.item_id
        for r in labeled.values()
        if ml.is_validation(r.key, seed=seed, valid_pct=valid_pct)
    }
    gold = [[r.item_id, r.label] for r in labeled.values() if r.item_id in validation - humans]
    recent_human = sorted(
        (r for r in labeled.values() if r.human and r.item_id in validation),
        key=lambda r: (r.labeled_at, r.item_id),
        reverse=True,
    )[:HOLDOUT_SIZE]
    info = {
        "frozen_at": now.isoformat(),
        "split": {"seed": seed, "valid_pct": valid_pct},
        "policy": {
            "max_age_days": project.refresh_max_age_days,
            "half_life_days": project.refresh_half_life_days,
            "per_class_cap": project.refresh_per_class_cap,
            "ood_as_class": project.training_ood_as_class,
        },
        "counts": {
            "base": sum(not r.human for r in kept),
            "human": sum(r.human for r in kept),
            "ood_excluded": ood_excluded,
            "dropped_age": dropped["age"],
            "dropped_recency": dropped["recency"],
            "dropped_cap": dropped["cap"],
        },
        "gold": sorted(gold),
        "holdout": sorted([r.item_id, r.label] for r in recent_human if r.label != OOD_LABEL),
    }
    rows = sorted([r.item_id, r.label] for r in kept)
    logger.info(
        "snapshot.frozen project=%s rows=%d counts=%s", project.slug, len(rows), info["counts"]
    )
    return Snapshot(rows=rows, info=info)
