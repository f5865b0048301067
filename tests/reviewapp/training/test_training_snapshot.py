"""Snapshots: a stable split as data grows, the refresh policy, reproducible runs on CPU."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from reviewapp import ml
from reviewapp.models import (
    DecidedBy,
    Item,
    ItemOrigin,
    ModelVersion,
    Outcome,
    RunState,
    RunTrigger,
    TrainingRun,
)
from reviewapp.training import services as training
from reviewapp.training import snapshots
from tests.factories import ItemFactory, ProjectFactory
from tests.training_support import FAST_PARAMS, labeled_project

pytestmark = pytest.mark.django_db


def _human(item: Item, label: str, *, days_ago: float = 0, ood: bool = False) -> Outcome:
    return Outcome.objects.create(
        item=item,
        label="" if ood else label,
        is_out_of_domain=ood,
        decided_by=DecidedBy.HUMAN,
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def _items(project, n, *, label="3", origin=ItemOrigin.UPLOAD):
    base_label = label if origin == ItemOrigin.BASE else ""
    return [ItemFactory(project=project, origin=origin, base_label=base_label) for _ in range(n)]


def _validation_ids(project, snapshot, seed=42):
    keys = dict(Item.objects.filter(project=project).values_list("id", "key"))
    return {i for i, _ in snapshot.rows if ml.is_validation(keys[i], seed=seed, valid_pct=0.2)}


def test_split_is_stable_as_data_grows():
    project = ProjectFactory()
    _items(project, 60, origin=ItemOrigin.BASE)
    first = snapshots.snapshot_freeze(project=project)
    for item in _items(project, 120):
        _human(item, "5")
    grown = snapshots.snapshot_freeze(project=project)
    first_valid = _validation_ids(project, first)
    first_train = {i for i, _ in first.rows} - first_valid
    grown_valid = _validation_ids(project, grown)
    assert 0 < len(first_valid) < len(first.rows)
    assert first_valid <= grown_valid  # an old validation item stays in validation
    assert not first_train & grown_valid  # and no training item moves to validation
    assert {i for i, _ in first.info["gold"]} == first_valid  # the base-set gold set is frozen
    assert first.info["gold"] == grown.info["gold"]
    assert grown.info["holdout"] and all(label == "5" for _, label in grown.info["holdout"])
    holdout_ids = {i for i, _ in grown.info["holdout"]}
    assert holdout_ids <= grown_valid


def test_max_age_and_per_class_cap_drop_what_they_say():
    project = ProjectFactory(refresh_max_age_days=30)
    base = _items(project, 5, origin=ItemOrigin.BASE)
    fresh = [_human(item, "1", days_ago=2).item for item in _items(project, 6)]
    stale = [_human(item, "1", days_ago=45).item for item in _items(project, 4)]
    snap = snapshots.snapshot_freeze(project=project)
    kept = {i for i, _ in snap.rows}
    assert {i.pk for i in fresh + base} == kept and not kept & {i.pk for i in stale}
    assert snap.info["counts"]["dropped_age"] == 4

    project.refresh_max_age_days, project.refresh_per_class_cap = None, 3
    snap = snapshots.snapshot_freeze(project=project)
    ones = [i for i, label in snap.rows if label == "1"]
    assert sorted(ones) == sorted(i.pk for i in fresh[-3:])  # the newest three of class "1"
    assert snap.info["counts"]["dropped_cap"] == 7 + 2  # 7 extra "1"s, 2 extra base "3"s


def test_recency_weighting_keeps_old_labels_at_their_weight():
    project = ProjectFactory(refresh_half_life_days=10)
    new = [_human(i, "2", days_ago=0).item.pk for i in _items(project, 100)]
    mid = [_human(i, "2", days_ago=10).item.pk for i in _items(project, 200)]
    old = [_human(i, "2", days_ago=100).item.pk for i in _items(project, 100)]
    kept = {i for i, _ in snapshots.snapshot_freeze(project=project).rows}
    assert set(new) <= kept
    assert 70 <= len(kept & set(mid)) <= 130  # weight 1/2 at one half-life
    assert len(kept & set(old)) <= 3  # weight 1/1024
    again = {i for i, _ in snapshots.snapshot_freeze(project=project).rows}
    assert again == kept  # reproducible: the coin is the item key


def test_out_of_domain_outcomes_are_excluded_or_kept_as_a_class():
    project = ProjectFactory()
    items = _items(project, 3)
    for item in items:
        _human(item, "", ood=True)
    snap = snapshots.snapshot_freeze(project=project)
    assert snap.rows == [] and snap.info["counts"]["ood_excluded"] == 3
    project.training_ood_as_class = True
    snap = snapshots.snapshot_freeze(project=project)
    assert [label for _, label in snap.rows] == [snapshots.OOD_LABEL] * 3


def _replay(run: TrainingRun) -> TrainingRun:
    return TrainingRun.objects.create(
        project=run.project,
        trigger=RunTrigger.RETRY,
        params=run.params,
        snapshot=run.snapshot,
        snapshot_hash=run.snapshot_hash,
        snapshot_info=run.snapshot_info,
        retry_of=run,
    )


def test_same_snapshot_and_seed_give_the_same_metrics_on_cpu(digit_records, tiny_artifact):
    project = labeled_project(records=digit_records[:200], artifact=tiny_artifact)
    run = training.training_run_start(project=project, trigger="manual", params=FAST_PARAMS)
    first = training.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and first.training_run == run
    replay = _replay(run)
    second = training.training_run_execute(run_id=replay.pk)
    replay.refresh_from_db()
    assert first.metadata["dataset_hash"] == second.metadata["dataset_hash"] == run.snapshot_hash
    for name in ("valid_accuracy", "valid_loss", "nll"):
        if name in first.metrics:
            assert first.metrics[name] == pytest.approx(second.metrics[name], abs=1e-6)
    assert run.evaluation["sets"] == replay.evaluation["sets"]
    validation = run.evaluation["sets"]["validation"]
    assert validation["n"] > 10 and validation["champion"] is not None
    assert 0 <= validation["candidate"]["ci"][0] <= validation["candidate"]["accuracy"]
    assert len(run.evaluation["confusion_matrix"]) == len(run.evaluation["labels"])
    assert run.evaluation["top_losses"] and "item_id" in run.evaluation["top_losses"][0]
    assert run.progress_detail["history"], "the loss curve was recorded"


def _corrupt(item: Item) -> None:
    Path(item.image.path).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")


def test_a_corrupt_image_fails_the_run_naming_the_item(digit_records):
    project = labeled_project(records=digit_records[:40], slug="corrupt-fail")
    bad = Item.objects.filter(project=project).order_by("pk")[3]
    _corrupt(bad)
    run = training.training_run_start(project=project, trigger="manual", params=FAST_PARAMS)
    with pytest.raises(training.TrainingDataError, match=f"item {bad.pk}"):
        training.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == RunState.FAILED and f"item {bad.pk}" in run.error
    assert not ModelVersion.objects.filter(project=project).exists()


def test_a_corrupt_image_is_skipped_and_reported_when_the_project_says_so(digit_records):
    project = labeled_project(records=digit_records[:120], slug="corrupt-skip")
    project.training_skip_corrupt = True
    project.save(update_fields=["training_skip_corrupt"])
    bad = Item.objects.filter(project=project).order_by("pk")[5]
    _corrupt(bad)
    run = training.training_run_start(project=project, trigger="manual", params=FAST_PARAMS)
    version = training.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert version is not None and run.state == RunState.SUCCEEDED
    assert f"skipped item {bad.pk}" in run.log


def test_too_few_items_are_refused_with_a_message():
    project = ProjectFactory()
    _items(project, 3, origin=ItemOrigin.BASE)
    with pytest.raises(ValidationError, match="only 3 labeled items"):
        training.training_run_start(project=project, trigger="manual")
