"""Champion and challenger end to end through a real Celery worker (issue 20 point 5).

A champion (the tiny model) and a different challenger (the drift model: more data, more epochs)
predict every ingested item in the worker's batches; people review blind in the shadow stage; the
comparison is checked against counts made here from the stored rows; the sticky A/B share is
measured in the automated stage; promotion goes through its gate (the challenger's own blind
labels, the frozen holdout) and leaves the new champion none of the old one's class thresholds.

Runs on SQLite + the filesystem broker, or PostgreSQL + Redis, as the environment says.
"""

from collections import Counter

import pytest
from scipy.stats import binomtest

from reviewapp.intake import prediction_service, services
from reviewapp.models import (
    Alias,
    ClassAutomation,
    DecidedBy,
    Item,
    Outcome,
    Prediction,
    Project,
    ReviewReason,
    ReviewTask,
    RolloutEvent,
    RolloutEventKind,
    RunState,
    RunTrigger,
    Stage,
    TrainingRun,
    Verdict,
)
from reviewapp.review import claim
from reviewapp.review import services as queues
from reviewapp.rollout import champion as rollout_champion
from reviewapp.rollout import ltt, routing, versions
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout import services as rollout
from reviewapp.rollout.policy import Policy
from tests.conftest import celery_worker_processes, wait_for
from tests.factories import ProjectFactory, ReviewerFactory, RolloutAdminFactory

pytestmark = [pytest.mark.worker]

AB_SHARE = 0.5
# A generous error budget so that a few dozen blind labels can certify a class: 0.4 at δ = 0.5
# split over ten classes needs six error-free labels at the top of a class (ltt.min_labels).
EPSILON, DELTA = 0.4, 0.5


def _holdout(n: int, candidate: int, champion: int, candidate_only: int, champion_only: int):
    return {
        "n": n,
        "candidate": {"correct": candidate},
        "champion": {"correct": champion},
        "paired": {"candidate_only": candidate_only, "champion_only": champion_only},
    }


def _ingest(project, records) -> list[Item]:
    items = []
    for record in records:
        with open(record.path, "rb") as handle:
            item, _ = services.item_ingest(
                project=project, data=handle.read(), client_key=record.key
            )
        items.append(item)
    return items


def _predicted(items, worker) -> None:
    """Wait until the worker has written both models' predictions and routed every item."""
    wait_for(
        lambda: (
            Prediction.objects.filter(item__in=items).count() >= 2 * len(items)
            and Item.objects.filter(pk__in=[i.pk for i in items])
            .exclude(outcome__isnull=False)
            .exclude(tasks__isnull=False)
            .count()
            == 0
        ),
        timeout=180,
        message=f"worker did not predict and route; log:\n{worker.log_path.read_text()[-3000:]}",
    )


def _acting_versions(items) -> dict[int, int]:
    """Item id -> the model version that acted on it (auto decision, or the task's prediction)."""
    acting = dict(
        Outcome.objects.filter(item__in=items, decided_by=DecidedBy.MODEL).values_list(
            "item_id", "model_version_id"
        )
    )
    for item_id, version_id in ReviewTask.objects.filter(item__in=items).values_list(
        "item_id", "prediction__model_version_id"
    ):
        acting.setdefault(item_id, version_id)
    return acting


@pytest.fixture
def duel(transactional_db, tiny_artifact, drift_artifact):
    """A shadow-stage project: the tiny model as champion, the drift model as challenger."""
    assert tiny_artifact.metadata["labels"] == drift_artifact.metadata["labels"]
    project = ProjectFactory(
        labels=list(tiny_artifact.metadata["labels"]),
        stage=Stage.SHADOW,
        error_budget=EPSILON,
        error_delta=DELTA,
    )
    admin = RolloutAdminFactory()
    champion = versions.champion_register(
        project=project, artifact=tiny_artifact, reason="test champion"
    )
    challenger = versions.model_version_register(
        project=project,
        artifact_path=str(drift_artifact.path),
        sha256=drift_artifact.sha256,
        metadata=drift_artifact.metadata,
    )
    rollout_champion.challenger_set(
        project=project, model_version=challenger, actor=admin, reason="more data, more epochs"
    )
    return project, admin, champion, challenger


@pytest.fixture
def celery_worker(transactional_db, media_dir, artifacts_dir, tmp_path):
    """A real worker that sends no drift checks: whether one is sent depends on the prediction
    ids the suite has reached, and one that ran after the switch to the automated stage stepped
    the stage back (digits 1000+ against the champion's 0..399 do drift), so no model decided."""
    with celery_worker_processes(1, tmp_path, {"HANDOFF_DRIFT_CHECK_EVERY": "0"}) as (process,):
        yield process


def test_a_challenger_predicts_compares_shares_and_is_promoted_through_its_gate(
    duel, celery_worker, digit_records
):
    project, admin, champion, challenger = duel
    unseen = digit_records[1000:]  # neither model trained on these
    zeros = [r for r in unseen if str(r.label) == "0"][:16]
    others = [r for r in unseen if str(r.label) != "0"][:14]
    shadow_records = zeros + others
    truth = {r.key: str(r.label) for r in shadow_records}

    # 1. Every item: exactly one champion and one challenger prediction, written by the worker.
    items = _ingest(project, shadow_records)
    _predicted(items, celery_worker)
    per_item = Counter(
        Prediction.objects.filter(item__in=items).values_list("item_id", "model_version_id")
    )
    assert set(per_item) == {(i.pk, v.pk) for i in items for v in (champion, challenger)}
    assert set(per_item.values()) == {1}
    tasks = ReviewTask.objects.filter(item__in=items)
    assert tasks.count() == len(items)  # shadow: everything goes to a person, blind
    assert set(tasks.values_list("prediction__model_version_id", flat=True)) == {champion.pk}

    # 4a. No blind labels yet: the challenger's gate refuses, saying what is missing.
    with pytest.raises(rollout.RolloutRefused, match=r"gate does not pass: class \w+: needs ~"):
        rollout_champion.champion_promote(project=project, actor=admin, reason="too early")
    assert versions.champion_of(project) == champion

    # 2. Blind reviews through the review services, as a reviewer works the queue.
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    decided = 0
    while task := claim.task_claim_next(project=project, reviewer=reviewer):
        queues.decision_submit(
            task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label=truth[task.item.key]
        )
        decided += 1
    assert decided == len(items)

    comparison = rollout_selectors.challenger_comparison(project=project)
    assert (comparison.champion, comparison.challenger) == (champion, challenger)
    said = {
        (item_id, version_id): label
        for item_id, version_id, label in Prediction.objects.filter(item__in=items).values_list(
            "item_id", "model_version_id", "label"
        )
    }
    human = dict(Outcome.objects.filter(item__in=items).values_list("item_id", "label"))
    assert human == {i.pk: truth[i.key] for i in items}
    a_right = {i.pk for i in items if said[i.pk, champion.pk] == human[i.pk]}
    b_right = {i.pk for i in items if said[i.pk, challenger.pk] == human[i.pk]}
    overall_a, overall_b = comparison.overall
    assert (overall_a.n, overall_a.correct) == (len(items), len(a_right))
    assert (overall_b.n, overall_b.correct) == (len(items), len(b_right))
    assert overall_b.low <= overall_b.rate <= overall_b.high
    assert comparison.only_champion_right == len(a_right - b_right)
    assert comparison.only_challenger_right == len(b_right - a_right)
    assert {
        (d["item_id"], d["champion"], d["challenger"], d["human"]) for d in comparison.disagreements
    } == {
        (i.pk, said[i.pk, champion.pk], said[i.pk, challenger.pk], human[i.pk])
        for i in items
        if said[i.pk, champion.pk] != said[i.pk, challenger.pk]
    }
    by_class = {label: (a, b) for label, a, b in comparison.per_class}
    for label in {"0", *human.values()}:
        ids = [i.pk for i in items if human[i.pk] == label]
        a, b = by_class[label]
        assert (a.n, a.correct) == (len(ids), len(a_right.intersection(ids)))
        assert (b.n, b.correct) == (len(ids), len(b_right.intersection(ids)))
    # The better trained challenger is not worse here, and its gate now passes on class 0.
    assert overall_b.correct >= overall_a.correct
    gate = rollout_selectors.challenger_gate(project=project, challenger=challenger)
    assert gate.passed, gate.missing
    assert "0" in gate.certified

    # 4b. The frozen holdout says the challenger is worse: refused even with an override.
    run = TrainingRun.objects.create(
        project=project,
        trigger=RunTrigger.MANUAL,
        state=RunState.SUCCEEDED,
        evaluation={"sets": {"holdout": _holdout(300, 270, 290, 3, 23)}},
    )
    challenger.training_run = run
    challenger.save(update_fields=["training_run"])
    with pytest.raises(rollout.RolloutRefused, match="Promotion refused: on the frozen holdout"):
        rollout_champion.champion_promote(project=project, actor=admin, override_reason="ship it")
    assert versions.champion_of(project) == champion
    TrainingRun.objects.filter(pk=run.pk).update(
        evaluation={"sets": {"holdout": _holdout(300, 291, 280, 14, 3)}}
    )

    # 3. The A/B share, in the automated stage where a model decides.
    Project.objects.filter(pk=project.pk).update(
        stage=Stage.AUTOMATED, confidence_threshold=0.0, class_thresholds={}, audit_rate=0.0
    )
    project.refresh_from_db()
    rollout_champion.ab_share_set(project=project, actor=admin, share=AB_SHARE, reason="A/B test")
    ab_items = _ingest(project, unseen[200:300])
    _predicted(ab_items, celery_worker)
    acting = _acting_versions(ab_items)
    assert set(acting) == {i.pk for i in ab_items}
    guarded = set(
        ReviewTask.objects.filter(item__in=ab_items)
        .exclude(detail="")
        .values_list("item_id", flat=True)
    )  # the domain guard sends an item to people before any arm is chosen
    assert set(
        ReviewTask.objects.filter(item_id__in=guarded).values_list(
            "reason", "prediction__model_version"
        )
    ) <= {(ReviewReason.OUT_OF_DOMAIN, champion.pk), (ReviewReason.PRIORITY, champion.pk)}
    armed = [i for i in ab_items if i.pk not in guarded]
    assert len(armed) >= 50
    expected = {
        i.pk: challenger.pk
        if routing.Buckets.of(project_id=project.pk, key=i.key).ab < AB_SHARE
        else champion.pk
        for i in armed
    }
    assert {i.pk: acting[i.pk] for i in armed} == expected  # the arm is the item key's bucket
    on_challenger = sum(1 for i in armed if acting[i.pk] == challenger.pk)
    assert binomtest(on_challenger, len(armed), AB_SHARE).pvalue > 0.001, on_challenger
    ab_said = {
        (item_id, version_id): label
        for item_id, version_id, label in Prediction.objects.filter(item__in=ab_items).values_list(
            "item_id", "model_version_id", "label"
        )
    }
    auto = Outcome.objects.filter(item__in=armed, decided_by=DecidedBy.MODEL)
    project.refresh_from_db()
    reasons = Counter(ReviewTask.objects.filter(item__in=armed).values_list("reason", flat=True))
    assert project.stage == Stage.AUTOMATED, reasons
    assert auto.exists(), reasons
    for item_id, version_id, label in auto.values_list("item_id", "model_version_id", "label"):
        assert label == ab_said[item_id, version_id]  # the acting model's own label

    # Sticky: routing the stored predictions again picks the same arm, and a redelivery to the
    # worker writes nothing new.
    policy = Policy.from_project(project)
    for item in armed:
        mine = {p.model_version_id: p for p in Prediction.objects.filter(item=item)}
        for _ in range(2):
            _, chosen = prediction_service.route_decide(
                prediction=mine[champion.pk],
                challenger_prediction=mine[challenger.pk],
                policy=policy,
            )
            assert chosen.model_version_id == acting[item.pk]
    before = (
        Prediction.objects.filter(item__in=ab_items).count(),
        ReviewTask.objects.filter(item__in=ab_items).count(),
        Outcome.objects.filter(item__in=ab_items).count(),
    )
    from reviewapp.tasks import predict_item

    runs = celery_worker.log_path.read_text().count("succeeded in")
    redelivered = ab_items[:10]
    for item in redelivered:
        predict_item.delay(item.pk)
    wait_for(
        lambda: celery_worker.log_path.read_text().count("succeeded in") >= runs + len(redelivered),
        timeout=90,
        message="the worker did not run the redeliveries",
    )
    assert (
        Prediction.objects.filter(item__in=ab_items).count(),
        ReviewTask.objects.filter(item__in=ab_items).count(),
        Outcome.objects.filter(item__in=ab_items).count(),
    ) == before
    assert _acting_versions(ab_items) == acting

    # 4c. The gate passes and the holdout allows it: the challenger becomes champion. The old
    # champion's cached class thresholds (class 3 at 0.5, class 0 at 0.6123) do not carry over.
    Project.objects.filter(pk=project.pk).update(class_thresholds={"3": 0.5, "0": 0.6123})
    project.refresh_from_db()
    gate = rollout_selectors.challenger_gate(project=project, challenger=challenger)
    promoted = rollout_champion.champion_promote(
        project=project, actor=admin, reason="it is better"
    )
    assert promoted == challenger
    assert versions.champion_of(project) == challenger
    assert rollout.challenger_of(project) is None
    project.refresh_from_db()
    assert project.ab_share == 0.0
    event = RolloutEvent.objects.filter(project=project, kind=RolloutEventKind.ALIAS).latest("pk")
    assert event.to_value == f"champion v{challenger.number} (challenger retired)"
    assert event.evidence["gate"]["passed"] and not event.evidence["override"]
    assert event.evidence["holdout"]["candidate_only"] == 14
    own = {
        label: gate.certified.get(label, ltt.NEVER)
        for label in Policy.from_project(project).candidate_labels()
    }
    assert project.class_thresholds == own
    assert project.class_thresholds["3"] == ltt.NEVER  # not earned by the new champion
    rows = ClassAutomation.objects.filter(project=project)
    assert set(rows.values_list("model_version_id", flat=True)) <= {challenger.pk, champion.pk}
    assert {
        r.label: r.threshold for r in rows.filter(model_version=challenger) if r.threshold <= 1
    } == gate.certified
    assert rollout_selectors.alias_holder(project=project, alias=Alias.CHALLENGER) is None
