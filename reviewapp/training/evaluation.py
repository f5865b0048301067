"""A candidate beside the champion on exactly the same items, with confidence intervals.

Three item sets come from the frozen snapshot: the run's validation split, the gold set (base-set
items on the validation side, which never change) and the holdout (the most recent human-reviewed
items on the validation side). Accuracies carry Wilson score intervals.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from reviewapp import ml
from reviewapp.models import (
    Item,
    ModelVersion,
    Project,
    RunState,
    TrainingRun,
)
from reviewapp.review import quality as review_quality
from reviewapp.rollout import champion as rollout_champion
from reviewapp.rollout import services as rollout
from reviewapp.rollout import stats, versions

logger = logging.getLogger(__name__)

TOP_LOSSES = 12
Z_95 = 1.959964


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Two-sided 95% Wilson interval (see ``reviewapp.stats.wilson_interval``)."""
    return stats.wilson_interval(successes, n, z)


def _score(y_true: list[str], y_pred: list[str]) -> dict[str, Any]:
    correct = sum(a == p for a, p in zip(y_true, y_pred, strict=True))
    low, high = wilson_interval(correct, len(y_true))
    accuracy = correct / len(y_true) if y_true else None
    return {"correct": correct, "accuracy": accuracy, "ci": [low, high]}


def _paired(y_true: list[str], candidate: list[str], champion: list[str]) -> dict[str, int]:
    """The discordant items of a paired comparison (the McNemar test's b and c)."""
    rows = list(zip(y_true, candidate, champion, strict=True))
    return {
        "candidate_only": sum(t == a and t != b for t, a, b in rows),
        "champion_only": sum(t == b and t != a for t, a, b in rows),
    }


def evaluation_sets(*, run: TrainingRun, validation_ids: list[int]) -> dict[str, list[list]]:
    """The [item_id, label] rows of each evaluation set, all frozen with the run's snapshot."""
    labels = dict(map(tuple, run.snapshot))
    return {
        "validation": [[item_id, labels[item_id]] for item_id in validation_ids],
        "gold": run.snapshot_info.get("gold", []),
        "holdout": run.snapshot_info.get("holdout", []),
    }


def _predict(version_path: str, rows: list[list], paths: dict[int, str], device: str):
    return ml.predict_paths(
        artifact_path=version_path, paths=[paths[item_id] for item_id, _ in rows], device=device
    )


def _scored_path(item: Item) -> str:
    """The file a model is scored on: the image, or a clip's middle sampled frame."""
    names = item.frame_names
    return default_storage.path(names[len(names) // 2]) if names else item.image.path


def evaluate_candidate(
    *,
    run: TrainingRun,
    artifact_path: str,
    labels: list[str],
    validation_ids: list[int],
    device: str,
) -> dict[str, Any]:
    """Score the candidate and the current champion on the run's frozen evaluation sets."""
    champion = versions.champion_of(run.project)
    sets = evaluation_sets(run=run, validation_ids=validation_ids)
    wanted = {item_id for rows in sets.values() for item_id, _ in rows}
    items = Item.objects.in_bulk(wanted)
    paths = {item_id: _scored_path(item) for item_id, item in items.items()}
    result: dict[str, Any] = {
        "champion": {"id": champion.pk, "number": champion.number} if champion else None,
        "labels": labels,
        "sets": {},
    }
    for name, rows in sets.items():
        rows = [r for r in rows if r[0] in paths and r[1] in labels]
        if not rows:
            result["sets"][name] = {"n": 0}
            continue
        y_true = [label for _, label in rows]
        y_pred, probs = _predict(artifact_path, rows, paths, device)
        entry = {"n": len(rows), "candidate": _score(y_true, y_pred), "champion": None}
        if champion is not None:
            champion_pred, _ = _predict(champion.artifact_path, rows, paths, device)
            entry["champion"] = _score(y_true, champion_pred)
            entry["paired"] = _paired(y_true, y_pred, champion_pred)
        result["sets"][name] = entry
        if name == "validation":
            result["confusion_matrix"] = ml.confusion_matrix(y_true, y_pred, labels)
            result["top_losses"] = [
                {**row, "item_id": rows[row["index"]][0]}
                for row in ml.top_losses(y_true, y_pred, probs, labels, k=TOP_LOSSES)
            ]
    return result


def promotion_gate(*, run: TrainingRun) -> tuple[bool, str]:
    """Whether the candidate may replace the champion, judged on the run's frozen holdout.

    Passes when the holdout has at least the project's gate_min_reviews items, the candidate is
    right at least as often as the champion on those same items, and the Wilson lower bound of
    its accuracy reaches the project's gate_target_agreement.
    """
    project: Project = run.project
    holdout = run.evaluation.get("sets", {}).get("holdout", {})
    n = holdout.get("n", 0)
    if n < project.gate_min_reviews:
        needed = project.gate_min_reviews
        return False, f"the holdout has {n} reviewed items; the gate needs {needed}"
    candidate, champion = holdout["candidate"], holdout.get("champion")
    if champion is not None and candidate["correct"] < champion["correct"]:
        return False, (
            f"the candidate is right on {candidate['correct']}/{n} holdout items, "
            f"the champion on {champion['correct']}/{n}"
        )
    low = candidate["ci"][0]
    if low < project.gate_target_agreement:
        return False, (
            f"the lower bound of the candidate's holdout accuracy is {low:.3f}, "
            f"below the target {project.gate_target_agreement:.3f}"
        )
    return True, f"holdout accuracy lower bound {low:.3f} on {n} items"


def _candidate_of(run: TrainingRun) -> ModelVersion:
    version = ModelVersion.objects.filter(training_run=run).first()
    if run.state != RunState.SUCCEEDED or version is None:
        raise ValidationError("This run has no registered candidate model.")
    return version


def candidate_make_challenger(*, run: TrainingRun, actor) -> ModelVersion:
    """Enter the run's candidate as the project's challenger (shadow beside the champion)."""
    version = _candidate_of(run)
    rollout_champion.challenger_set(
        project=run.project,
        model_version=version,
        actor=actor,
        reason=f"candidate of training run {run.pk} entered as challenger",
    )
    return version


def candidate_promote(*, run: TrainingRun, actor) -> ModelVersion:
    """Promote the candidate through the rollout engine's challenger gate (challenger first).

    Refused (``RolloutRefused``, a ValidationError: its message shows on the run's page) when
    the candidate is worse than the champion on the run's frozen holdout.
    """
    version = _candidate_of(run)
    if rollout.challenger_of(run.project) != version:
        raise ValidationError(
            "Promotion refused: make this candidate the challenger first; it is promoted once "
            "the rollout gate has compared it with the champion on reviewed items."
        )
    # The frozen-holdout comparison is enforced by champion_promote (rollout.holdout); the gate's
    # sentence goes into the audit log.
    _, holdout = promotion_gate(run=run)
    promoted = rollout_champion.champion_promote(
        project=run.project,
        actor=actor,
        reason=f"candidate of training run {run.pk} promoted (frozen holdout: {holdout})",
    )
    logger.info("training.promoted run=%s version=%s", run.pk, promoted.pk)
    return promoted


def item_label_fix(*, item: Item, label: str, actor) -> str:
    """Fix a wrong label found among the top losses, recorded as an admin decision."""
    review_quality.outcome_relabel(item=item, label=label, actor=actor)
    logger.info("training.label_fixed item=%s label=%s by=%s", item.pk, label, actor.get_username())
    return label
