"""The Python client (clients/python) against gunicorn and a real Celery worker (issue 20).

tests/client runs every client call against pytest-django's live server; this one runs the
client's main path the way a pipeline would meet it: gunicorn on PostgreSQL + Redis of their
own, a prefork worker predicting and routing, a reviewer deciding on the desk over HTTP. Upload
in batches (PIL images and numpy arrays), wait for each decision, read the outcomes feed with a
cursor, export the manifest to a DataFrame.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.harness.images import digit_png

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
from handoff_client import Client  # noqa: E402

SPEC = {"stage": "partial", "traffic_share": 0.5, "confidence_threshold": 0.0, "reviewers": 1}
COUNT = 12


def _images() -> list:
    """Half PIL images, half numpy arrays, of real handwritten digits."""
    pictures = [Image.open(io.BytesIO(digit_png(n))).convert("RGB") for n in range(COUNT)]
    return [p if n % 2 else np.asarray(p) for n, p in enumerate(pictures)]


def _review_all(stack, seeded: dict, *, until: float) -> int:
    """Decide every task in the queue on the desk's JSON endpoints; returns how many."""
    http = stack.http()
    http.log_in(seeded["reviewers"][0], seeded["password"])
    base, decided = f"/projects/{seeded['slug']}/review", 0
    while time.monotonic() < until:
        status, body, _ = http.request("GET", f"{base}/next.json")
        assert status == 200, body
        task = json.loads(body)["task"]
        if task is None:
            return decided
        fields = {"task": task["id"], "label": "3", "duration_ms": 800}
        status, body = http.post_form(f"{base}/decide.json", fields)[:2]
        assert status == 200, body
        decided += 1
    raise AssertionError("the queue did not empty in time")


def test_the_client_uploads_waits_reads_the_feed_and_exports_through_gunicorn_and_a_worker(
    stack, artifact_spec
):
    stack.artifact = artifact_spec
    seeded = stack.seed({**SPEC, "artifact": artifact_spec})
    stack.start_web(workers=2)
    stack.start_worker(concurrency=1)
    with Client(f"http://127.0.0.1:{stack.web_port}", seeded["token"], timeout=30) as client:
        assert seeded["slug"] in {p.slug for p in client.projects()}
        results = client.upload(seeded["slug"], _images(), batch_size=5)
        assert [r.created for r in results] == [True] * COUNT
        ids = [r.item.id for r in results]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the worker predicts and routes every item
            if all(client.item(i).status != "received" for i in ids):
                break
            time.sleep(0.5)
        reviewed = _review_all(stack, seeded, until=deadline)
        decided = [client.wait_for_decision(i, timeout=60, interval=0.2) for i in ids]
        by = {d.outcome.decided_by for d in decided}
        assert reviewed > 0 and by <= {"model", "human"}
        assert sum(d.outcome.decided_by == "human" for d in decided) == reviewed
        feed = client.outcomes(seeded["slug"], page_size=5)
        first = list(feed)
        assert sorted(o.item_id for o in first) == sorted(ids)
        resumed = client.outcomes(seeded["slug"], cursor=feed.cursor)
        assert list(resumed) == []  # nothing new since the saved cursor
        frame = client.export_dataframe(seeded["slug"])
        assert set(ids) <= set(frame["item_id"])  # every decided item, with its label
        labels = dict(zip(frame["item_id"], frame["label"].astype(str), strict=True))
        assert all(labels[d.id] == d.outcome.label for d in decided)
        # Uploading the same images again is safe: the server knows them by content.
        again = client.upload(seeded["slug"], _images()[:3])
        assert [r.created for r in again] == [False] * 3
        assert [r.item.id for r in again] == ids[:3]
