"""Micro-batched prediction in-process: the claim, one batch's writes, redelivery, clips, the
sweeper, and the claim's PostgreSQL statement against its ORM twin (issue 17)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import Retry
from django.db import connection, transaction
from django.utils import timezone

from reviewapp import tasks
from reviewapp.intake import batching, claims, outbox, services
from reviewapp.models import DriftSample, Item, ItemKind, Outcome, Prediction, ReviewTask, Stage
from tests.factories import png_bytes
from tests.video_support import digit_clip

pytestmark = pytest.mark.django_db


def _due_items(project, count: int, *, seed: int = 0) -> list[Item]:
    return [
        services.item_ingest(project=project, data=png_bytes(seed + n), enqueue_prediction=False)[0]
        for n in range(count)
    ]


def test_a_claim_takes_due_items_once_and_the_lease_keeps_them(champion_project, settings):
    items = _due_items(champion_project, 5)
    first = claims.items_claim_due(limit=3)
    second = claims.items_claim_due(limit=10)
    assert len(first) == 3 and len(second) == 2
    assert set(first) | set(second) == {item.pk for item in items}
    assert claims.items_claim_due(limit=10) == []  # every item is leased
    # A worker that died: once its lease ran out, the items are claimable again.
    Item.objects.update(prediction_claimed_until=timezone.now() - timedelta(seconds=1))
    assert len(claims.items_claim_due(limit=10)) == 5


def test_a_named_claim_skips_items_another_worker_holds(champion_project):
    held, free = _due_items(champion_project, 2)
    claims.items_claim_named(item_ids=[held.pk])
    assert claims.items_claim_named(item_ids=[held.pk, free.pk]) == [free.pk]
    # Out of the outbox (predicted already, or never due): returned, predicting it is harmless.
    Item.objects.filter(pk=held.pk).update(prediction_due_at=None, prediction_claimed_until=None)
    assert claims.items_claim_named(item_ids=[held.pk]) == [held.pk]


def test_one_batch_predicts_stores_routes_and_settles_every_item(champion_project, settings):
    settings.HANDOFF_PREDICT_BATCH = 64
    items = _due_items(champion_project, 12)
    report = batching.items_predict_due()
    assert sorted(report.predicted) == sorted(item.pk for item in items)
    assert Prediction.objects.filter(item__in=items).count() == 12
    assert DriftSample.objects.filter(prediction__item__in=items).count() == 12
    assert ReviewTask.objects.filter(item__in=items).count() == 12  # shadow: people decide
    assert not Item.objects.filter(pk__in=[i.pk for i in items], prediction_due_at__isnull=False)
    # One forward for the batch: every prediction carries the same batch latency.
    assert Prediction.objects.filter(item__in=items).values("latency_ms").distinct().count() == 1


def test_a_redelivered_batch_writes_nothing_twice(champion_project):
    items = _due_items(champion_project, 6)
    ids = [item.pk for item in items]
    assert len(batching.items_predict(item_ids=ids).predicted) == 6
    again = batching.items_predict(item_ids=ids)
    assert again.predicted == [] and sorted(again.already) == sorted(ids)
    assert Prediction.objects.filter(item__in=items).count() == 6
    assert DriftSample.objects.filter(prediction__item__in=items).count() == 6
    assert ReviewTask.objects.filter(item__in=items).count() == 6
    assert [tasks.predict_item.run(pk) for pk in ids] == ["already-predicted"] * 6


def test_two_workers_that_predicted_the_same_items_store_them_once(champion_project):
    """Both planned the batch; the second's bulk insert meets the first's rows and falls back."""
    items = _due_items(champion_project, 4)
    by_id = {
        item.pk: item
        for item in Item.objects.select_related("project").filter(project=champion_project)
    }
    plans = [
        batching._project_plan(project=champion_project, items=list(by_id.values()))
        for _ in range(2)
    ]
    reports = [batching.BatchReport(), batching.BatchReport()]
    for plan, report in zip(plans, reports, strict=True):
        batching._plans_write([plan], by_id, report)
    assert Prediction.objects.filter(item__in=items).count() == 4
    assert DriftSample.objects.count() == 4
    assert ReviewTask.objects.filter(item__in=items).count() == 4


def test_model_decisions_of_a_batch_are_outcomes(champion_project, digit_records):
    champion_project.stage, champion_project.traffic_share = Stage.AUTOMATED, 1.0
    champion_project.confidence_threshold, champion_project.audit_rate = 0.0, 0.0
    champion_project.ood_threshold = None
    champion_project.save()
    items = [
        services.item_ingest(
            project=champion_project,
            data=Path(record.path).read_bytes(),
            enqueue_prediction=False,
        )[0]
        for record in digit_records[:20]
    ]
    batching.items_predict(item_ids=[item.pk for item in items])
    decided = Outcome.objects.filter(item__in=items, decided_by="model").count()
    waiting = ReviewTask.objects.filter(item__in=items).count()
    assert decided > 0 and decided + waiting == 20  # each item routed exactly once


def test_clips_and_images_share_one_batch(champion_project):
    clip, _ = services.item_ingest(
        project=champion_project,
        data=digit_clip([3] * 12),
        original_filename="three.mp4",
        enqueue_prediction=False,
    )
    images = _due_items(champion_project, 3, seed=200)
    assert clip.kind == ItemKind.CLIP
    report = batching.items_predict(item_ids=[clip.pk, *(i.pk for i in images)])
    assert len(report.predicted) == 4
    prediction = Prediction.objects.get(item=clip)
    assert len(prediction.frames) == len(clip.clip["frames"]) > 1
    assert all(not p.frames for p in Prediction.objects.filter(item__in=images))


def test_the_sweeper_resends_items_whose_worker_died(champion_project, monkeypatch):
    (item,) = _due_items(champion_project, 1)
    assert claims.items_claim_due(limit=5) == [item.pk]  # a worker claimed it, then died
    Item.objects.filter(pk=item.pk).update(
        prediction_due_at=timezone.now() - timedelta(seconds=1),
        prediction_claimed_until=timezone.now() - timedelta(seconds=1),
    )
    sent = []
    monkeypatch.setattr(outbox, "_send", sent.append)
    assert outbox.predictions_sweep() == 1 and sent == [item.pk]
    assert tasks.predict_item.run(item.pk) == "predicted"
    item.refresh_from_db()
    assert item.prediction_due_at is None and item.prediction_claimed_until is None


def test_a_drift_check_is_sent_per_multiple_of_every_without_counting(
    champion_project, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.HANDOFF_DRIFT_CHECK_EVERY = 5
    sent = []
    monkeypatch.setattr(batching.jobs, "job_send", lambda name, *args: sent.append((name, args)))
    items = _due_items(champion_project, 10, seed=300)
    with django_capture_on_commit_callbacks(execute=True):
        batching.items_predict(item_ids=[item.pk for item in items])
    ids = Prediction.objects.filter(item__in=items).values_list("pk", flat=True)
    assert any(pk % 5 == 0 for pk in ids)
    assert sent == [("reviewapp.drift_check", (champion_project.pk,))]  # once per batch


@pytest.mark.postgres
def test_the_claim_statement_and_its_orm_twin_claim_the_same_items(champion_project):
    if connection.vendor != "postgresql":
        pytest.skip("the claim statement is PostgreSQL's")
    rng = random.Random(7)
    now = timezone.now()
    items = _due_items(champion_project, 30, seed=400)
    for item in items:
        Item.objects.filter(pk=item.pk).update(
            prediction_due_at=rng.choice([None, now - timedelta(seconds=rng.randint(0, 900))]),
            prediction_claimed_until=rng.choice([None, now - timedelta(60), now + timedelta(60)]),
        )
    exclude = [items[0].pk, items[1].pk]
    for limit in (1, 5, 30):
        picks = []
        for use_sql in (True, False):
            with transaction.atomic():
                savepoint = transaction.savepoint()
                picks.append(claims.items_claim_due(limit=limit, exclude=exclude, use_sql=use_sql))
                transaction.savepoint_rollback(savepoint)
        assert picks[0] == picks[1] and picks[0]


def test_a_task_whose_item_another_worker_holds_looks_again_after_the_lease(champion_project):
    (item,) = _due_items(champion_project, 1, seed=500)
    assert claims.items_claim_due(limit=1) == [item.pk]  # another worker (perhaps dead) has it
    with pytest.raises(Retry):
        tasks.predict_item.run(item.pk)
    assert not Prediction.objects.filter(item=item).exists()
