"""Scenario: labeled digits replayed through the real model, router and per-class gates.

Simulated reviewers give each item its true digit, blind, in the shadow stage. Classes earn
automation one by one (Learn then Test under the error budget) and the project moves shadow ->
supervised -> partial -> automated; only the certified classes are decided by the model. Then
the world changes under it (the reviewers' truth moves one digit on): the monitor demotes every
automated class by itself within the stated number of audits, and the stage steps back. Finally a
miswired model forced in as champion inherits nothing: it decides no item alone.
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlcore import artifacts as ml_artifacts
from reviewapp import ml, tasks
from reviewapp.intake import services
from reviewapp.models import (
    ClassAutomation,
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
from reviewapp.rollout import evidence, monitor, versions
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout import services as rollout
from tests.factories import ProjectFactory, ReviewerFactory, RolloutAdminFactory

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.django_db

EPSILON, DELTA = 0.15, 0.2  # the error budget: wrong at most 15%, with 80% confidence
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
        self.shift = 0  # the world's change: the reviewers' truth moves this many digits on

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
            truth = str((int(record.label) + self.shift) % 10)
            queues.decision_submit(
                task=task, reviewer=self.reviewer, verdict="correct", label=truth
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


def test_classes_earn_automation_then_are_demoted_when_the_world_changes(
    scenario_artifact, digit_records, tmp_path
):
    project = ProjectFactory(
        labels=[str(d) for d in range(10)],
        priority_labels=["4"],
        audit_rate=0.3,
        error_budget=EPSILON,
        error_delta=DELTA,
    )
    admin, reviewer = RolloutAdminFactory(), ReviewerFactory()
    project.reviewers.add(reviewer)
    champion = versions.champion_register(project=project, artifact=scenario_artifact, reason="v1")
    replay = Replay(project, digit_records[900:], reviewer)

    with pytest.raises(rollout.RolloutRefused):  # no blind evidence yet
        rollout.stage_promote(project=project, actor=admin, reason="too early")
    shadow_items = replay.until_gate_passes(budget=400)
    rollout.project_check(project=project)  # the periodic check graduates the certified classes
    automated = {label for label, t in project.class_thresholds.items() if t <= 1}
    assert automated and "4" not in automated and len(automated) < 9, project.class_thresholds
    for stage in (Stage.SUPERVISED, Stage.PARTIAL, Stage.AUTOMATED):
        assert rollout.stage_promote(project=project, actor=admin, reason="earned") == stage
        if stage == Stage.SUPERVISED:
            rollout.traffic_share_set(project=project, actor=admin, share=0.5, reason="half")

    # A healthy automated stage stays automated; stream until the audit has a few samples.
    for _ in range(200):
        replay.step()
        if _audited(project) >= 6:
            break
    assert project.stage == Stage.AUTOMATED
    auto = Outcome.objects.filter(item__project=project, decided_by=DecidedBy.MODEL)
    assert auto.exists() and not auto.filter(label="4").exists()  # priority: always a human
    # Only the classes that earned it are decided alone (graduations since are in the log).
    graduated = {  # str(): SQLite's JSON key transform hands "6" back as the number 6
        str(label)
        for label in RolloutEvent.objects.filter(
            project=project, kind=RolloutEventKind.THRESHOLD, actor__isnull=True
        ).values_list("evidence__class", flat=True)
    }
    assert set(auto.values_list("label", flat=True)) <= graduated
    accuracy = rollout_selectors.auto_accuracy_estimate(project=project)
    truth = _true_accuracy(project, {r.key: r.label for r in digit_records})
    assert accuracy.audited >= 6
    # The IPW estimate from the audit agrees with the truth only the harness knows.
    assert abs(accuracy.estimate - truth) <= 3 * accuracy.std_error + 0.05, (accuracy, truth)

    # The world changes: every label the model gives is now wrong. Each automated class must be
    # demoted by the monitor within the audits it takes a run of errors to cross 1/δ.
    # The bound of each class counts its audits since it was automated (all correct so far or
    # nearly): the run of errors has to outweigh them first.
    prior = {
        row.label: evidence.audit_outcomes(
            project=project, model_version=champion, since=row.since
        ).get(row.label, [])
        for row in ClassAutomation.objects.filter(model_version=champion, state="automated")
    }
    bounds = {
        label: int(
            monitor.first_crossing(
                np.concatenate([np.asarray(seen, float), np.ones(300)]), null=EPSILON, alpha=DELTA
            )
        )
        - len(seen)
        for label, seen in prior.items()
    }
    replay.shift = 1
    fed_before = replay.fed
    automating = (Stage.PARTIAL, Stage.AUTOMATED)
    while (
        ClassAutomation.objects.filter(model_version=champion, state="automated").exists()
        and project.stage in automating
    ):
        assert replay.fed - fed_before < 300, "automation did not stop within 300 items"
        replay.step()
    rows = ClassAutomation.objects.filter(model_version=champion, state="demoted")
    # Automation stopped: every class demoted by its own bound, or (classes that graduated
    # late have few audits of their own, the pooled bound is faster) the overall bound stepped
    # the stage back to supervised, where people decide everything.
    assert len(prior) > 0
    assert rows.filter(label__in=list(prior)).count() == len(prior) or (
        project.stage == Stage.SUPERVISED
    )
    for row in rows.filter(label__in=list(prior)):
        seen = prior[row.label]
        after, errors_after = row.audits - len(seen), row.audit_errors - sum(seen)
        assert 0 < after <= bounds[row.label] and errors_after == after, (row.label, after, bounds)
    stages = [
        (e.from_value, e.to_value, e.actor_label)
        for e in RolloutEvent.objects.filter(project=project, kind="stage").order_by("pk")
    ]
    assert stages[:3] == [
        ("shadow", "supervised", admin.username),
        ("supervised", "partial", admin.username),
        ("partial", "automated", admin.username),
    ]
    # From here the model decides nothing alone. The overall bound counts the audits of the
    # stage it is in: each step back is on fresh audits, never the same ones twice.
    assert set(stages[3:]) <= {
        ("automated", "partial", "system"),
        ("partial", "supervised", "system"),
    }
    decided_alone = auto.count()
    for _ in range(20):
        replay.step()
    assert auto.count() == decided_alone
    logger.warning(
        "scenario: %s shadow items to the first certified class; demotion after %s audits "
        "(bounds %s), %s items",
        shadow_items,
        {r.label: r.audits - len(prior.get(r.label, [])) for r in rows},
        bounds,
        replay.fed - fed_before,
    )

    # A miswired model forced in as champion inherits no threshold: it decides nothing alone.
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
    rollout.project_check(project=project)
    replay.shift = 0
    for _ in range(30):
        replay.step()
    assert not Outcome.objects.filter(model_version=bad, decided_by=DecidedBy.MODEL).exists()
    assert set(project.class_thresholds.values()) == {2.0}
