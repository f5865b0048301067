"""Training on clips: decided clips become labelled frames, and the split is by clip."""

from __future__ import annotations

import pytest

from mlcore import data as ml_data
from reviewapp import ml
from reviewapp.intake import services as intake
from reviewapp.models import ItemKind, ItemOrigin, Project, RunState, RunTrigger
from reviewapp.training import services as training
from tests.training_support import FAST_PARAMS
from tests.video_support import digit_clip

pytestmark = pytest.mark.django_db


def _clip_project(clips: int = 30) -> Project:
    project = Project.objects.create(
        slug="clips", name="Clips", labels=[str(d) for d in range(10)], clip_frames=4
    )
    for n in range(clips):
        digit = n % 10
        intake.item_ingest(
            project=project,
            data=digit_clip([digit] * (6 + n)),  # a different length: a different clip
            origin=ItemOrigin.BASE,
            base_label=str(digit),
            enqueue_prediction=False,
        )
    return project


def _sides(records, split) -> dict[str, set[bool]]:
    sides: dict[str, set[bool]] = {}
    for record in records:
        side = ml.is_validation(record.split_key, seed=split["seed"], valid_pct=split["valid_pct"])
        sides.setdefault(record.group, set()).add(side)
    return sides


def test_frames_of_one_clip_never_straddle_training_and_validation():
    project = _clip_project()
    run = training.training_run_start(project=project, trigger=RunTrigger.MANUAL)
    records, ids = training._usable_records(run=run)
    assert project.items.filter(kind=ItemKind.CLIP).count() == 30
    assert len(records) == 30 * 4 and len(set(ids)) == 30  # four labelled frames per clip
    assert all(r.path.endswith(".png") and r.group for r in records)
    assert len({r.key for r in records}) == len(records)  # keys stay unique, groups are clips
    # mlcore's own split (the one training uses) agrees: whole clips on each side.
    train_idx, valid_idx = ml_data.split_records(
        [ml_data.Record(path=r.path, label=r.label, key=r.key, group=r.group) for r in records],
        seed=run.snapshot_info["split"]["seed"],
        valid_pct=run.snapshot_info["split"]["valid_pct"],
    )
    assert not {ids[i] for i in train_idx} & {ids[i] for i in valid_idx}
    sides = _sides(records, run.snapshot_info["split"])
    assert all(len(side) == 1 for side in sides.values())  # a clip is on one side only
    assert {next(iter(side)) for side in sides.values()} == {True, False}  # both sides used
    # Keyed per frame instead, the same frames would straddle: the check above can fail.
    per_frame = [ml.TrainingRecord(path=r.path, label=r.label, key=r.key) for r in records]
    by_clip: dict[int, set[bool]] = {}
    for item_id, record in zip(ids, per_frame, strict=True):
        split = run.snapshot_info["split"]
        by_clip.setdefault(item_id, set()).add(
            ml.is_validation(record.key, seed=split["seed"], valid_pct=split["valid_pct"])
        )
    assert any(len(side) == 2 for side in by_clip.values())


def test_a_training_run_learns_from_clip_frames_and_validates_per_clip():
    project = _clip_project(20)
    run = training.training_run_start(
        project=project, trigger=RunTrigger.MANUAL, params=FAST_PARAMS
    )
    version = training.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.error
    assert version is not None and "training 80 items" in run.log
    validation = run.evaluation["sets"]["validation"]["n"]
    clips_in_validation = sum(
        ml.is_validation(key, seed=42, valid_pct=0.2)
        for key in project.items.values_list("key", flat=True)
    )
    assert validation == clips_in_validation  # scored once per clip, not once per frame
