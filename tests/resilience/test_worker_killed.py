"""A prediction worker SIGKILLed in the middle of a task: redelivered, predicted exactly once."""

from __future__ import annotations

import os
import signal

import psycopg

from bench.harness.images import png
from bench.harness.processes import wait_until

BLOCKED_INSERT = """
    SELECT count(*) FROM pg_locks
    WHERE NOT granted AND relation = 'reviewapp_prediction'::regclass
"""


def test_worker_killed_mid_prediction_is_redelivered_and_predicts_once(stack, artifact_spec):
    seeded = stack.seed({"artifact": artifact_spec})
    stack.start_web(workers=1)
    worker = stack.start_worker()
    api = stack.http()
    api.token = seeded["token"]
    # Hold the prediction table: the task runs the model, then blocks on its INSERT, so the
    # kill lands in the middle of the task (after the work, before anything is stored).
    with psycopg.connect(stack.database_url) as holder:
        holder.execute("LOCK TABLE reviewapp_prediction IN EXCLUSIVE MODE")
        status, body = api.submit(seeded["slug"], png(7))
        assert status == 202, body
        item_id = body["id"]
        wait_until(lambda: stack.scalar(BLOCKED_INSERT), timeout=90, what="the task to block")
        (child,) = worker.children()
        os.kill(child, signal.SIGKILL)
        wait_until(lambda: "WorkerLostError" in worker.log(), timeout=30, what="the worker loss")
        holder.rollback()  # release the table

    settled = "SELECT prediction_due_at IS NULL FROM reviewapp_item WHERE id=%s"
    wait_until(
        lambda: stack.scalar(settled, item_id), timeout=120, what="the redelivered task to finish"
    )
    predictions = stack.scalar(
        "SELECT count(*) FROM reviewapp_prediction WHERE item_id=%s", item_id
    )
    open_tasks = stack.scalar(
        "SELECT count(*) FROM reviewapp_reviewtask WHERE item_id=%s AND status = ANY(%s)",
        item_id,
        ["open", "claimed"],
    )
    assert predictions == 1
    assert open_tasks == 1  # shadow stage: exactly one task waits for a human
    received = worker.log().count("Task reviewapp.predict_item[")
    assert received >= 2, "the task was not delivered a second time"
    assert worker.alive(), "the worker itself must survive the loss of its pool process"
