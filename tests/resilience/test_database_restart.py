"""PostgreSQL restarts while web and worker run: 503 during the outage, no half write, and
both reconnect by themselves (CONN_HEALTH_CHECKS) once it is back."""

from __future__ import annotations

import json

from bench.harness.images import png
from bench.harness.processes import wait_until

PREDICTED = "SELECT count(*) FROM reviewapp_item WHERE prediction_due_at IS NULL"


def test_database_restart_gives_503_then_web_and_worker_reconnect(stack, pg_cluster, artifact_spec):
    seeded = stack.seed({"artifact": artifact_spec})
    slug = seeded["slug"]
    stack.start_web(workers=1)  # one process: its persistent connection is the one that breaks
    worker = stack.start_worker()
    api, admin = stack.http(), stack.http()
    api.token = seeded["token"]
    admin.log_in(seeded["admin"], seeded["password"])
    assert api.submit(slug, png(1))[0] == 202
    assert admin.request("GET", f"/projects/{slug}/")[0] == 200
    wait_until(lambda: stack.scalar(PREDICTED) == 1, timeout=120, what="the first prediction")

    pg_cluster.stop("fast")  # every open connection is closed by the server
    status, body = api.submit(slug, png(2), key="during-outage")
    assert status == 503 and body["error"]["code"] == "unavailable", body
    status, page, headers = admin.request("GET", f"/projects/{slug}/")
    assert status == 503 and b"Temporarily unavailable" in page
    assert headers.get("Retry-After") == "30"
    status, page, _ = admin.post_files(f"/projects/{slug}/upload/", "images", [("a.png", png(3))])
    assert status == 503 and b"Nothing was saved" in page
    status, payload, _ = api.request("GET", "/api/v1/projects/")
    assert status == 503 and json.loads(payload)["error"]["code"] == "unavailable"

    pg_cluster.start()
    # No half write: only the item from before the outage exists, and only its file.
    assert stack.scalar("SELECT count(*) FROM reviewapp_item") == 1
    files = [p for p in (stack.media / "items").rglob("*") if p.is_file()]
    assert len(files) == 1, files
    # The very first requests after the restart succeed: stale connections are replaced.
    assert admin.request("GET", f"/projects/{slug}/")[0] == 200
    status, body = api.submit(slug, png(2), key="during-outage")
    assert status == 202, body
    wait_until(lambda: stack.scalar(PREDICTED) == 2, timeout=120, what="a prediction after")
    log = worker.log()
    assert "raised unexpected" not in log, log[-3000:]
    assert worker.alive()
