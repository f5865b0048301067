"""The replay's world: the labeled digit stream with its shift, the champion, one project per arm.

Import after ``django.setup()`` (it imports the models). The truth (each item's digit) stays
here; the system only ever sees images.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from bench.harness import seeding
from bench.harness.images import png_encode
from mlcore import artifacts as ml_artifacts
from reviewapp import ml
from reviewapp.accounts.services import groups_ensure
from reviewapp.api.auth import api_client_create
from reviewapp.models import Project
from reviewapp.rollout import versions

LABELS = [str(d) for d in range(10)]
BASE_COUNT = 1000  # the demo's base set (reviewapp/demo.py): digits 0..999


@dataclass(frozen=True)
class Entry:
    """One item of the stream: its place in time, its truth, and whether the shift is on."""

    index: int
    key: str
    label: str
    shifted: bool
    path: str
    shift: str = "night"

    def image_bytes(self) -> bytes:
        """The PNG the client sends: the digit, or its shifted version (simulate_stream's
        shifts, ``reviewapp.ml.shift_image``)."""
        if not self.shifted:
            return Path(self.path).read_bytes()
        with Image.open(self.path) as img:
            return png_encode(ml.shift_image(img.convert("RGB"), self.shift))


@dataclass(frozen=True)
class Split:
    """The demo's base set (training), the stream, and a never-streamed evaluation set."""

    base: list
    stream: list
    evaluation: list


def digits_split(*, var_dir: Path, eval_every: int = 5, stream_limit: int | None = None) -> Split:
    """Held-out digits (1000..1796) in index order; every `eval_every`-th one is kept for
    evaluating champions and never streamed."""
    records = ml.render_demo_digits(var_dir / "demo-digits")
    held_out = records[BASE_COUNT:]
    evaluation = [r for i, r in enumerate(held_out) if i % eval_every == eval_every - 1]
    stream = [r for i, r in enumerate(held_out) if i % eval_every != eval_every - 1]
    if stream_limit is not None and stream_limit < len(stream):
        step = len(stream) / stream_limit  # thin out evenly, keeping the time order
        stream = [stream[int(i * step)] for i in range(stream_limit)]
    return Split(base=records[:BASE_COUNT], stream=stream, evaluation=evaluation)


def stream_plan(
    *, records: list, onset: float, recovery: float, shift: str = "night"
) -> list[Entry]:
    """The stream in time order, the shift on from `onset` to `recovery` (fractions)."""
    n = len(records)
    start, end = round(onset * n), round(recovery * n)
    return [
        Entry(
            index=i,
            key=f"{r.key}-{shift}" if start <= i < end else r.key,
            label=r.label,
            shifted=start <= i < end,
            path=r.path,
            shift=shift,
        )
        for i, r in enumerate(records)
    ]


@dataclass(frozen=True)
class Arm:
    """One way of running the same stream: the project's policy and who acts on it."""

    key: str
    title: str
    settings: dict[str, Any]
    ood_detector: bool = True
    drift: bool = True
    admin: bool = False
    base_items: bool = False
    notes: str = ""


def arms_all(
    *,
    gate_min_reviews: int,
    gate_target: float,
    gate_confidence: float,
    retrain_every: int,
    review_order: str = "informative",
) -> dict[str, Arm]:
    """The baselines (a) manual, (b) fixed threshold, and (c) Handoff (its desk in
    ``review_order``)."""
    handoff = {
        "review_order": review_order,
        "auto_promote_after_hours": 0.0,
        "gate_min_reviews": gate_min_reviews,
        "gate_target_agreement": gate_target,
        "gate_confidence": gate_confidence,
        "error_budget": 1 - gate_target,  # issue 18: the gates derive from the error budget
        "error_delta": 1 - gate_confidence,
        "retrain_every_corrections": retrain_every,
        "drift_retrain": True,
    }
    handoff_notes = (
        "defaults (threshold 0.95, 5% audit, OOD flag, sequential demotion check, drift checks "
        "every 50 predictions that demote, raise the audit to 25% and start retraining) with gates "
        f"scaled to the stream ({gate_min_reviews} reviews, agreement {gate_target:.0%} at "
        f"{gate_confidence:.0%} confidence, overall and per class), promotion as soon as a gate "
        f"passes, retraining every {retrain_every} corrections, a rollout admin who sets a 50% "
        "share in partial and enters and promotes retrained models through their gate"
    )
    handoff_arm = Arm(
        key="handoff",
        title="(c) Handoff",
        settings={"stage": "shadow", **handoff},
        admin=True,
        base_items=True,
        notes=f"starts in shadow and earns its way; {handoff_notes}",
    )
    return {
        "manual": Arm(
            key="manual",
            title="(a) everything manual",
            settings={"stage": "shadow"},
            drift=False,
            notes="shadow stage for the whole stream: a human decides every item",
        ),
        "threshold": Arm(
            key="threshold",
            title="(b) fixed 0.9 threshold",
            settings={"stage": "automated", "confidence_threshold": 0.9, "audit_rate": 0.0},
            ood_detector=False,
            drift=False,
            notes="auto-accept at confidence >= 0.9, a human below; no audit, gates, OOD flag, "
            "drift checks or retraining",
        ),
        "handoff": handoff_arm,
        "handoff-automated": dataclasses.replace(
            handoff_arm,
            key="handoff-automated",
            title="(c') Handoff, automated at start",
            settings={**handoff_arm.settings, "stage": "automated"},
            notes="as (c), but the project had already earned the automated stage before the "
            "stream (so the shift meets an automated project)",
        ),
    }


def champion_train(*, records: list, epochs: int, dest: Path, seed: int):
    """Train the initial champion on the base set the way the demo seed does (CPU)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    params = {**seeding.TINY_MODEL, "epochs": epochs, "seed": seed}
    return ml.train_and_save(
        records=records, params=params, dest=dest, dataset_hash=f"replay-{seed}"
    )


def artifact_without_ood(*, source: Path, dest: Path):
    """The same weights with the OOD flag switched off: a plain threshold rule has no detector."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    metadata = json.loads((dest / ml_artifacts.METADATA_FILE).read_text())
    metadata["ood_thresholds"] = {}
    names = json.loads((dest / ml_artifacts.MANIFEST_FILE).read_text())["files"]
    files = {name: (dest / name).read_bytes() for name in names}
    files[ml_artifacts.METADATA_FILE] = json.dumps(metadata, indent=2, sort_keys=True).encode()
    manifest = ml_artifacts.manifest_bytes(files)
    for name, data in {**files, ml_artifacts.MANIFEST_FILE: manifest}.items():
        (dest / name).write_bytes(data)
    return ml_artifacts.load_artifact(dest)


@dataclass
class World:
    """What the clients need to act on one arm's project."""

    arm: Arm
    slug: str
    project_id: int
    token: str
    reviewers: list[str]
    admin: str
    truth: dict[int, str] = field(default_factory=dict)  # item id -> digit, filled while streaming


def world_create(*, arm: Arm, artifact, base_records: list, reviewers: int, run: str) -> World:
    """A project configured for the arm, its champion v1, its users and an API token."""
    reviewer_group, admin_group = groups_ensure()
    slug = f"replay-{arm.key}-{run}"
    project = Project.objects.create(
        slug=slug, name=f"Replay {arm.title}", labels=LABELS, **arm.settings
    )
    names = [f"{slug}-r{i}" for i in range(reviewers)]
    users = [seeding.user_create(name, reviewer_group) for name in names]
    admin = seeding.user_create(f"{slug}-admin", admin_group, staff=True)
    project.reviewers.add(*users, admin)
    if arm.base_items:  # the labeled base set that retraining starts from
        seeding.base_items_ingest(project=project, records=base_records)
    versions.champion_register(
        project=project,
        artifact=artifact,
        reason="replay: the model trained on the demo's base set",
    )
    _, token = api_client_create(name=f"{slug}-client", projects=[project])
    return World(
        arm=arm,
        slug=slug,
        project_id=project.pk,
        token=token,
        reviewers=names,
        admin=admin.username,
    )
