"""The broker is down while items arrive: everything is stored, and predicted once it returns."""

from __future__ import annotations

from bench.harness.images import png
from bench.harness.processes import wait_until

PER_ITEM = """
    SELECT i.id,
           (SELECT count(*) FROM reviewapp_prediction p WHERE p.item_id = i.id),
           (SELECT count(*) FROM reviewapp_reviewtask t WHERE t.item_id = i.id),
           (SELECT count(*) FROM reviewapp_outcome o WHERE o.item_id = i.id),
           i.prediction_due_at IS NULL
    FROM reviewapp_item i ORDER BY i.id
"""


def test_broker_down_uploads_and_api_are_stored_then_predicted_once(stack, artifact_spec):
    seeded = stack.seed({"artifact": artifact_spec})
    web = stack.start_web()
    stack.broker.stop()

    api = stack.http()
    api.token = seeded["token"]
    accepted = []
    for n in range(3):
        status, body = api.submit(seeded["slug"], png(100 + n), key=f"cam-{n}")
        assert status == 202, body
        accepted.append(body["id"])
    admin = stack.http()
    admin.log_in(seeded["admin"], seeded["password"])
    files = [(f"upload-{n}.png", png(200 + n)) for n in range(2)]
    status, _, headers = admin.post_files(f"/projects/{seeded['slug']}/upload/", "images", files)
    assert status == 302 and headers["Location"].endswith(f"/projects/{seeded['slug']}/")
    assert stack.scalar("SELECT count(*) FROM reviewapp_item") == 5
    assert stack.scalar("SELECT count(*) FROM reviewapp_prediction") == 0
    due = stack.scalar("SELECT count(*) FROM reviewapp_item WHERE prediction_due_at <= now()")
    assert due == 5, "items whose task could not be sent must be due for the sweeper"
    assert "prediction.enqueue_failed" in web.log()

    stack.broker.start()  # an empty broker: the lost sends must come from the outbox
    stack.start_worker()
    stack.start_beat(sweep_seconds=2)
    wait_until(
        lambda: (
            stack.scalar("SELECT count(*) FROM reviewapp_item WHERE prediction_due_at IS NULL") == 5
        ),
        timeout=180,
        what="the sweeper to get every item predicted",
    )
    rows = stack.sql(PER_ITEM)
    assert [r[1] for r in rows] == [1] * 5, "each item predicted exactly once"
    assert [r[2] + r[3] for r in rows] == [1] * 5, "each item has one task or one outcome"
    assert set(accepted) <= {r[0] for r in rows}
