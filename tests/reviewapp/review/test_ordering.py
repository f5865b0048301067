"""Stage work in order of informativeness; random samples, alerts and the "fifo" setting keep
first in, first out (issue 20, item 4). The claims run the project's real claim: PostgreSQL's
statement on PostgreSQL, the ORM twin on SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from reviewapp.intake import batching, prediction_service, services
from reviewapp.models import (
    DriftSample,
    Item,
    Project,
    ReviewOrder,
    ReviewReason,
    ReviewTask,
    Stage,
    TaskStatus,
)
from reviewapp.review import claim, ordering
from tests.factories import (
    ItemFactory,
    ModelVersionFactory,
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
)

pytestmark = pytest.mark.django_db


# The score ---------------------------------------------------------------------------------


def test_margin_uncertainty_is_one_minus_the_gap_between_the_two_top_classes():
    assert ordering.margin_uncertainty({"a": 0.7, "b": 0.2, "c": 0.1}) == pytest.approx(0.5)
    assert ordering.margin_uncertainty({"a": 0.45, "b": 0.45, "c": 0.1}) == pytest.approx(1.0)
    assert ordering.margin_uncertainty({"a": 1.0, "b": 0.0}) == pytest.approx(0.0)
    assert ordering.margin_uncertainty({"a": 0.9}) == pytest.approx(0.1)  # one class: p2 = 0


def test_diversity_prefers_embeddings_far_from_what_was_seen():
    reference = [[1.0, 0.0, 0.0]]
    near, across, opposite = [0.99, 0.1, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]
    scores = ordering.diversity_scores([near, across, opposite], reference)
    assert scores[0] < 0.01
    assert scores[1] == pytest.approx(0.5)  # orthogonal: halved cosine distance 1/2
    # k-center greedy's distance: to the nearest of the reference AND the batch's earlier ones.
    assert scores[2] == pytest.approx(0.5)  # opposite the reference, orthogonal to `across`
    alone = ordering.diversity_scores([opposite], reference)
    assert alone == [pytest.approx(1.0)]


def test_a_batch_of_look_alikes_is_scored_high_once():
    far = [0.0, 0.0, 1.0]
    first, second = ordering.diversity_scores([far, far], [[1.0, 0.0, 0.0]])
    assert first == pytest.approx(0.5) and second == pytest.approx(0.0)
    assert ordering.diversity_scores([far], []) == [1.0]  # nothing seen yet
    assert ordering.diversity_scores([None, far], []) == [None, 1.0]


def _prediction(project, probabilities, embedding=None):
    """A prediction by the project's one model version (diversity compares within a version)."""
    version = project.model_versions.first() or ModelVersionFactory(project=project)
    label = max(probabilities, key=probabilities.get)
    prediction = PredictionFactory(
        item__project=project,
        model_version=version,
        label=label,
        confidence=probabilities[label],
        probabilities=probabilities,
    )
    if embedding is not None:
        DriftSample.objects.create(prediction=prediction, embedding=embedding)
    return prediction


def _project(**fields) -> Project:
    defaults = {"labels": ["a", "b", "c"], "stage": Stage.SUPERVISED}
    return ProjectFactory(**{**defaults, **fields})


def test_routing_scores_stage_work_with_margin_plus_diversity():
    project = _project()
    seen = _prediction(project, {"a": 0.9, "b": 0.1}, embedding=[1.0, 0.0])
    decided = prediction_service.prediction_route(prediction=seen)
    queued = _prediction(project, {"a": 0.9, "b": 0.1}, embedding=[-1.0, 0.0])
    prediction_service.prediction_route(prediction=queued)  # queued, not decided: no reference
    ReviewTask.objects.filter(pk=decided.pk).update(status=TaskStatus.DONE)
    near = _prediction(project, {"a": 0.7, "b": 0.2, "c": 0.1}, embedding=[1.0, 0.0])
    far = _prediction(project, {"a": 0.7, "b": 0.2, "c": 0.1}, embedding=[-1.0, 0.0])
    near_task = prediction_service.prediction_route(prediction=near)
    far_task = prediction_service.prediction_route(prediction=far)
    assert near_task.reason == far_task.reason == ReviewReason.SUPERVISED
    near_task.refresh_from_db()
    far_task.refresh_from_db()
    assert near_task.informativeness == pytest.approx(0.5)  # margin 0.5, decided before: 0
    assert far_task.informativeness == pytest.approx(1.5)  # margin 0.5, opposite: 1


def test_the_batched_path_scores_stage_work_and_leaves_calibration_reviews_unscored(
    champion_project, digit_records
):
    items = [
        services.item_ingest(
            project=champion_project, data=Path(r.path).read_bytes(), enqueue_prediction=False
        )[0]
        for r in digit_records[400:412]
    ]
    batching.items_predict(item_ids=[item.pk for item in items[:6]])
    shadow = list(ReviewTask.objects.filter(item__in=items[:6]))
    assert ReviewReason.SHADOW in {t.reason for t in shadow}
    for task in shadow:  # calibration reviews unscored; an out-of-domain look is stage work
        assert (task.informativeness is None) == (task.reason not in ordering.ORDERED_REASONS)
    Project.objects.filter(pk=champion_project.pk).update(stage=Stage.SUPERVISED)
    batching.items_predict(item_ids=[item.pk for item in items[6:]])
    supervised = list(ReviewTask.objects.filter(item__in=items[6:]))
    assert ReviewReason.SUPERVISED in {t.reason for t in supervised}
    scores = [t.informativeness for t in supervised]
    assert all(s is not None and 0 <= s <= 2 for s in scores)
    assert len(set(scores)) > 1  # margin and diversity tell the items apart


# The queue ---------------------------------------------------------------------------------


def _aged(task: ReviewTask, seconds_ago: int) -> ReviewTask:
    task.created_at = timezone.now() - timedelta(seconds=seconds_ago)
    task.save(update_fields=["created_at"])
    return task


def _routed(project, probabilities, seconds_ago: int) -> ReviewTask:
    task = prediction_service.prediction_route(prediction=_prediction(project, probabilities))
    return _aged(task, seconds_ago)


def _claims(project, n: int) -> list[ReviewTask]:
    return [claim.task_claim_next(project=project, reviewer=ReviewerFactory()) for _ in range(n)]


def _stage_queue(project):
    confident = _routed(project, {"a": 0.98, "b": 0.01, "c": 0.01}, 300)  # oldest
    unsure = _routed(project, {"a": 0.5, "b": 0.45, "c": 0.05}, 100)  # newest
    middling = _routed(project, {"a": 0.7, "b": 0.25, "c": 0.05}, 200)
    return confident, middling, unsure


def test_the_queue_serves_the_most_informative_stage_task_first():
    project = _project()
    confident, middling, unsure = _stage_queue(project)
    assert _claims(project, 3) == [unsure, middling, confident]


def test_the_fifo_setting_restores_first_in_first_out():
    project = _project(review_order=ReviewOrder.FIFO)
    confident, middling, unsure = _stage_queue(project)
    assert _claims(project, 3) == [confident, middling, unsure]


def test_random_calibration_reviews_are_not_reordered_by_the_models_scores():
    project = _project(stage=Stage.SHADOW)
    sure = _routed(project, {"a": 0.98, "b": 0.01, "c": 0.01}, 300)
    unsure = _routed(project, {"a": 0.5, "b": 0.45, "c": 0.05}, 100)
    assert sure.reason == unsure.reason == ReviewReason.SHADOW
    assert sure.informativeness is None and unsure.informativeness is None
    assert _claims(project, 2) == [sure, unsure]  # arrival order, the uncertain one waits


def test_random_audits_keep_their_order_and_stage_work_of_their_priority_waits_behind():
    project = _project()  # audits and calibration reviews opened before it went supervised
    audits = [
        _aged(
            ReviewTaskFactory(
                prediction=_prediction(project, {"a": p, "b": 1 - p}),
                reason=ReviewReason.AUDIT,
                priority=20,
                audit_probability=0.05,
            ),
            age,
        )
        for p, age in ((0.99, 400), (0.51, 100))
    ]
    ordering.tasks_score(audits)
    assert [a.informativeness for a in audits] == [None, None]
    calibration = _aged(
        ReviewTaskFactory(prediction=_prediction(project, {"a": 0.97, "b": 0.03})), 250
    )
    stage = _routed(project, {"a": 0.5, "b": 0.49, "c": 0.01}, 500)  # older and most uncertain
    assert stage.reason == ReviewReason.SUPERVISED and stage.priority == 20
    # Same priority on purpose: random samples first, oldest first; the stage task after them.
    assert _claims(project, 4) == [audits[0], calibration, audits[1], stage]


def test_a_gold_task_sits_beside_the_task_it_rides_along_with():
    project = _project(gold_rate=1.0)
    ItemFactory(project=project, is_gold=True, gold_label="b")
    host = _routed(project, {"a": 0.6, "b": 0.4}, 10)
    mixed = ReviewTask.objects.get(project=project, gold_check=True)
    assert host.informativeness is not None
    assert mixed.informativeness == host.informativeness and mixed.reason == host.reason


def test_the_policy_page_shows_and_sets_the_review_order(client):
    project = _project()
    client.force_login(RolloutAdminFactory())
    page = client.get(reverse("rollout", args=[project.slug])).content.decode()
    assert 'name="review_order"' in page and "First in, first out" in page
    form = {
        "error_budget_percent": "1",
        "confidence_percent": "95",
        "audit_rate": "0.05",
        "alert_top_k": "0",
        "alert_min_probability": "0.5",
        "alert_deadline_minutes": "10",
        "review_order": "fifo",
        "reason": "calibrating the desk",
    }
    client.post(reverse("rollout-policy", args=[project.slug]), form)
    project.refresh_from_db()
    assert project.review_order == ReviewOrder.FIFO


def test_ordering_has_one_rule_the_orm_claim_follows():
    project = _project()
    rows = [
        (ReviewReason.SUPERVISED, 20, 0.3, 50),
        (ReviewReason.SUPERVISED, 20, 1.4, 40),
        (ReviewReason.SHADOW, 20, None, 30),
        (ReviewReason.LOW_CONFIDENCE, 40, 0.2, 20),
        (ReviewReason.SUPERVISED, 20, 1.4, 60),
        (ReviewReason.DOUBLE_REVIEW, 10, None, 70),
    ]
    tasks = []
    for reason, priority, score, age in rows:
        task = ReviewTaskFactory(
            prediction=_prediction(project, {"a": 0.6, "b": 0.4}),
            reason=reason,
            priority=priority,
            informativeness=score,
        )
        tasks.append(_aged(task, age))
    expected = sorted(
        tasks,
        key=lambda t: ordering.sort_key(
            priority=t.priority, informativeness=t.informativeness, created_at=t.created_at, pk=t.pk
        ),
    )
    queued = list(claim.claimable(project=project, reviewer=ReviewerFactory()))
    assert queued == expected
    assert Item.objects.filter(project=project).count() == len(rows)
