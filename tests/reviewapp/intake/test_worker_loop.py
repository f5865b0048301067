"""The thin loop on real parts: ingest -> Celery worker predicts -> queue -> decision -> outcome.

Runs on PostgreSQL + Redis when `make test` finds them (CI does), and on SQLite + kombu's
filesystem broker otherwise; either way the worker is a separate `celery worker` process.
"""

import pytest
from django.conf import settings
from django.db import connection

from reviewapp.intake import services
from reviewapp.models import Outcome, Prediction, ReviewTask, Verdict
from reviewapp.review import claim
from reviewapp.review import services as queues
from tests.conftest import wait_for
from tests.factories import ReviewerFactory

pytestmark = [pytest.mark.worker]


def test_thin_loop_through_a_real_worker(champion_project, celery_worker, digit_records):
    print(f"backends: database={connection.vendor} broker={settings.CELERY_BROKER_URL}")
    records = digit_records[1500:1505]
    items = [
        services.item_ingest(
            project=champion_project,
            data=open(record.path, "rb").read(),
            client_key=record.key,
        )[0]
        for record in records
    ]
    wait_for(
        lambda: Prediction.objects.filter(item__in=items).count() == len(items),
        timeout=90,
        message=f"worker did not predict; log:\n{celery_worker.log_path.read_text()[-3000:]}",
    )
    wait_for(lambda: ReviewTask.objects.filter(item__in=items).count() == len(items))
    assert Prediction.objects.filter(item__in=items).count() == len(items)  # once each

    reviewer = ReviewerFactory()
    champion_project.reviewers.add(reviewer)
    decided = 0
    while task := claim.task_claim_next(project=champion_project, reviewer=reviewer):
        truth = next(r.label for r in records if r.key == task.item.key)
        queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CORRECT, label=truth)
        decided += 1
    assert decided == len(items)
    outcomes = Outcome.objects.filter(item__in=items)
    assert {o.item.key: o.label for o in outcomes} == {r.key: r.label for r in records}
    assert all(o.decided_by == "human" for o in outcomes)


def test_redelivered_prediction_is_stored_once(champion_project, celery_worker, digit_records):
    from reviewapp.tasks import predict_item

    item, _ = services.item_ingest(
        project=champion_project,
        data=open(digit_records[1600].path, "rb").read(),
        enqueue_prediction=False,
    )
    for _ in range(3):
        predict_item.delay(item.pk)
    wait_for(lambda: Prediction.objects.filter(item=item).exists(), timeout=90)
    wait_for(
        lambda: celery_worker.log_path.read_text().count("succeeded in") >= 3,
        timeout=60,
        message="the worker did not run all three deliveries",
    )
    assert Prediction.objects.filter(item=item).count() == 1
    assert ReviewTask.objects.filter(item=item).count() == 1
