"""Scenario: labeled digits replayed through the real model, router and gates.

Simulated reviewers give each item its true digit. The project earns its way shadow ->
supervised -> partial -> automated through passing gates; then a broken model is swapped in as
champion and the engine demotes by itself within the stated number of audited items.
"""

import json
import logging
import shutil
from pathlib import Path

import pytest

from mlcore import artifacts as ml_artifacts
from reviewapp import ml, tasks
from reviewapp.intake import services
from reviewapp.models import (
    DecidedBy,
    Outcome,
    ReviewTask,
    RolloutEvent,
    RolloutEventKind,
    Stage,
    TaskStatus,
)
from reviewapp.review import services as queues
from reviewapp.rollout import champion as rollout_champion
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout import services as rollout
from reviewapp.rollout import stats, versions
from tests.factories import ProjectFactory, ReviewerFactory, RolloutAdminFactory

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.django_db

AUTO_CLASSES = ["0", "3", "5", "9"]  # classes this policy lets the model decide
TARGET, CONFIDENCE = 0.85, 0.8
# The broken model: the same network with its outputs wired to the wrong digit (0->3->5->9->0).
MISWIRED = {"0": "3", "3": "5", "5": "9", "9": "0"}


@pytest.fixture(scope="session")
def scenario_artifact(tmp_path_factory, digit_records):
    """A resnet18 trained on the first 900 digits (the replay uses the other 897)."""
    dest = tmp_path_factory.mktemp("scenario-model") / "artifact"
    # 6 epochs: with fewer, how well the model knows a class varied with the CPU it was trained
    # on (2 epochs: one machine's model never passed the class-5 gate; 3 epochs: another's reached
    # 89% and never passed class 9 within 300 items). With 6 it reached 96.8% there and the gates
    # passed after 76, 86 and 128 items. The scenario needs a model that deserves promotion.
    return ml.train_and_save(
        records=digit_records[:900],
        params={"arch": "resnet18", "epochs": 6, "image_size": 32, "device": "cpu"},
        dest=dest,
        dataset_hash="scenario",
    )


def _miswired_copy(artifact, dest: Path):
    """Copy an artifact with its label order permuted: confident, and wrong."""
    shutil.copytree(artifact.path, dest)
    metadata = json.loads((dest / ml_artifacts.METADATA_FILE).read_text())
    metadata["labels"] = [MISWIRED.get(str(label), str(label)) for label in metadata["labels"]]
    files = {
        name: (dest / name).read_bytes()
        for name in json.loads((dest / ml_artifacts.MANIFEST_FILE).read_text())["files"]
    }
    files[ml_artifacts.METADATA_FILE] = json.dumps(metadata, indent=2, sort_keys=True).encode()
    manifest = ml_artifacts.manifest_bytes(files)
    for name, data in {**files, ml_artifacts.MANIFEST_FILE: manifest}.items():
        (dest / name).write_bytes(data)
    return ml_artifacts.load_artifact(dest)


class Replay:
    """Feed digits one by one through ingest, the prediction task and the reviewers."""

    def __init__(self, project, records, reviewer):
        self.project, self.records, self.reviewer = project, iter(records), reviewer
        self.fed = 0

    def step(self) -> ReviewTask | None:
        record = next(self.records)
        item, _ = services.item_ingest(
            project=self.project,
            data=Path(record.path).read_bytes(),
            client_key=record.key,
            enqueue_prediction=False,
        )
        tasks.predict_item.run(item.pk)  # the worker's code path: predict, then route
        self.fed += 1
        task = ReviewTask.objects.filter(item=item, status=TaskStatus.OPEN).first()
        if task is not None:
            queues.decision_submit(
                task=task, reviewer=self.reviewer, verdict="correct", label=record.label
            )
        self.project.refresh_from_db()
        return task

    def until_gate_passes(self, budget: int) -> int:
        start = self.fed
        while not rollout_selectors.gate_report(project=self.project).passed:
            assert self.fed - start < budget, rollout_selectors.gate_report(
                project=self.project
            ).missing
            self.step()
        return self.fed - start


def _audited(project) -> int:
    return rollout_selectors.auto_accuracy_estimate(project=project).audited


def _true_accuracy(project, truth: dict[str, str]) -> float:
    """Accuracy of the model's own labels on the auto-decision population (auto + audited)."""
    rows = (
        Outcome.objects.filter(item__project=project, created_at__gte=project.stage_entered_at)
        .filter(decided_by=DecidedBy.MODEL)
        .values_list("item__key", "label")
    )
    audited = ReviewTask.objects.filter(
        project=project, reason="audit", created_at__gte=project.stage_entered_at
    ).values_list("item__key", "prediction__label")
    pairs = [*rows, *audited]
    return sum(truth[key] == label for key, label in pairs) / len(pairs)


def test_project_earns_automation_then_demotes_itself_when_the_model_breaks(
    scenario_artifact, digit_records, tmp_path
):
    project = ProjectFactory(
        labels=[str(d) for d in range(10)],
        confidence_threshold=0.9,
        class_thresholds={d: 1.01 for d in ["1", "2", "6", "7", "8"]},  # never automatic
        priority_labels=["4"],
        audit_rate=0.3,
        gate_min_reviews=30,
        gate_target_agreement=TARGET,
        gate_confidence=CONFIDENCE,
    )
    admin, reviewer = RolloutAdminFactory(), ReviewerFactory()
    project.reviewers.add(reviewer)
    versions.champion_register(project=project, artifact=scenario_artifact, reason="v1")
    replay = Replay(project, digit_records[900:], reviewer)

    used = {}
    for stage, then in (
        (Stage.SHADOW, None),
        (
            Stage.SUPERVISED,
            lambda: rollout.traffic_share_set(
                project=project, actor=admin, share=0.5, reason="half of the confident traffic"
            ),
        ),
        (Stage.PARTIAL, None),
    ):
        assert project.stage == stage
        with pytest.raises(rollout.RolloutRefused):  # a fresh stage has no evidence yet
            rollout.stage_promote(project=project, actor=admin, reason="too early")
        used[stage] = replay.until_gate_passes(budget=300)
        rollout.stage_promote(project=project, actor=admin, reason=f"gate passed in {stage}")
        if then:
            then()
    assert project.stage == Stage.AUTOMATED

    # A healthy automated stage stays automated; stream until the audit has a few samples.
    for _ in range(150):
        replay.step()
        if replay.fed > 40 + sum(used.values()) and _audited(project) >= 6:
            break
    assert project.stage == Stage.AUTOMATED
    auto = Outcome.objects.filter(item__project=project, decided_by=DecidedBy.MODEL)
    assert auto.exists() and not auto.filter(label="4").exists()  # priority: always a human
    accuracy = rollout_selectors.auto_accuracy_estimate(project=project)
    truth = _true_accuracy(project, {r.key: r.label for r in digit_records})
    assert accuracy.audited >= 6
    # The IPW estimate from the audit agrees with the truth only the harness knows.
    assert abs(accuracy.estimate - truth) <= 3 * accuracy.std_error + 0.05, (accuracy, truth)

    # Degrade: a miswired model is forced in as champion (an override, logged).
    broken = _miswired_copy(scenario_artifact, tmp_path / "broken")
    bad = versions.model_version_register(
        project=project,
        artifact_path=str(broken.path),
        sha256=broken.sha256,
        metadata=broken.metadata,
    )
    rollout_champion.challenger_set(
        project=project, model_version=bad, actor=admin, reason="v2 candidate"
    )
    rollout_champion.champion_promote(
        project=project, actor=admin, override_reason="simulated bad deploy"
    )
    assert versions.champion_of(project) == bad

    bound = stats.looks_to_detect(agreement=0.0, target=TARGET, alpha=1 - CONFIDENCE, window=200)
    measured = []
    for stage_after in (Stage.PARTIAL, Stage.SUPERVISED):
        fed_before, looks = replay.fed, 0
        stage_before = project.stage
        while project.stage == stage_before:
            assert replay.fed - fed_before < 300, "no demotion within 300 items"
            looks = len(rollout_selectors.demotion_agreements(project=project))
            replay.step()
        assert project.stage == stage_after
        measured.append({"audited": looks + 1, "items": replay.fed - fed_before})
    logger.warning(
        "scenario: items per gate %s; demotion bound %s audited items; measured %s",
        used,
        bound,
        measured,
    )
    print(f"\nscenario: items per gate {used}; bound {bound} audited; measured {measured}")
    assert all(m["audited"] <= bound for m in measured)

    events = list(RolloutEvent.objects.filter(project=project).order_by("created_at", "pk"))
    stages = [(e.from_value, e.to_value, e.actor_label) for e in events if e.kind == "stage"]
    assert stages == [
        ("shadow", "supervised", admin.username),
        ("supervised", "partial", admin.username),
        ("partial", "automated", admin.username),
        ("automated", "partial", "system"),
        ("partial", "supervised", "system"),
    ]
    for event in events:
        if event.kind == RolloutEventKind.STAGE and event.actor_label != "system":
            assert event.evidence["gate"]["passed"]
            assert all(line["passed"] for line in event.evidence["lines"])
        if event.kind == RolloutEventKind.STAGE and event.actor_label == "system":
            assert event.evidence["automatic"] and event.evidence["agreed"] == 0
    kinds = {e.kind for e in events}
    assert {"traffic", "alias", "override"} <= kinds
