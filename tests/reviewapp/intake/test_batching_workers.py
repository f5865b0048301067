"""Two real prediction worker processes race for the same due items: each is predicted once.

Runs on PostgreSQL + Redis (the claim's SKIP LOCKED statement) when the test command points at
them, and on SQLite + kombu's filesystem broker (the ORM twin) otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reviewapp import jobs
from reviewapp.intake import services
from reviewapp.models import Item, Prediction, ReviewTask
from tests.conftest import celery_worker_processes, wait_for

pytestmark = [pytest.mark.worker]


def test_two_workers_racing_for_the_same_due_items_predict_each_once(
    transactional_db, champion_project, digit_records, tmp_path
):
    items = [
        services.item_ingest(
            project=champion_project,
            data=Path(record.path).read_bytes(),
            client_key=record.key,
            enqueue_prediction=False,
        )[0]
        for record in digit_records[1700:1760]
    ]
    ids = [item.pk for item in items]
    env = {"HANDOFF_PREDICT_BATCH": "8", "HANDOFF_DRIFT_CHECK_EVERY": "0"}
    with celery_worker_processes(2, tmp_path, extra_env=env) as workers:
        # Every item's task twice (a redelivery) and two drains: both workers reach for each row.
        for item_id in ids:
            jobs.job_send(jobs.PREDICT_ITEM, item_id)
            jobs.job_send(jobs.PREDICT_ITEM, item_id)
        jobs.job_send(jobs.PREDICT_BATCH)
        jobs.job_send(jobs.PREDICT_BATCH)
        logs = "\n".join(w.log_path.read_text()[-2000:] for w in workers)
        wait_for(
            lambda: not Item.objects.filter(pk__in=ids, prediction_due_at__isnull=False).exists(),
            timeout=240,
            message=f"items still due; worker logs:\n{logs}",
        )
        wait_for(
            lambda: all("predict_batch.done" in w.log_path.read_text() for w in workers),
            timeout=60,
            message="one worker never ran a batch",
        )
    assert Prediction.objects.filter(item_id__in=ids).count() == len(ids)
    assert ReviewTask.objects.filter(item_id__in=ids).count() == len(ids)
    predicted = [
        sum(int(n) for n in re.findall(r"predict_batch\.done .*predicted=(\d+)", text))
        for text in (w.log_path.read_text() for w in workers)
    ]
    # Each item was predicted by exactly one batch, and both workers took part.
    assert sum(predicted) == len(ids) and all(n > 0 for n in predicted), predicted
