"""Soak test: API ingest clients (the Python client, handoff_client) and desk reviewers together
against gunicorn + a real worker (PostgreSQL + Redis of its own), then a check that every
accepted item has exactly one final outcome or waits in exactly one queue.

    .venv/bin/python bench/soak.py                    # 180 s, 2 items/s, 3 reviewers
    .venv/bin/python bench/soak.py --seconds 60 --no-write

It starts a throwaway PostgreSQL cluster (initdb) and a redis-server on free ports, never the
shared ones. tests/resilience/test_soak.py runs the same scenario, shorter. Results go to
docs/benchmarks.md between the soak markers.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The ingest clients are the Python client (clients/python), run from the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python"))

from handoff_client import Client, HandoffError  # noqa: E402

from bench.harness.client import Http  # noqa: E402
from bench.harness.database import django_setup, migrate  # noqa: E402
from bench.harness.docs import marked_section_write  # noqa: E402
from bench.harness.images import digit_png  # noqa: E402
from bench.harness.servers import PgCluster, postgres_bin  # noqa: E402
from bench.harness.stack import Stack  # noqa: E402

SEED_SPEC = {"stage": "partial", "traffic_share": 0.5, "confidence_threshold": 0.0}
FINAL_STATE = """
    SELECT i.id,
           i.prediction_due_at IS NOT NULL,
           (SELECT count(*) FROM reviewapp_prediction p WHERE p.item_id = i.id),
           (SELECT count(*) FROM reviewapp_reviewtask t
             WHERE t.item_id = i.id AND t.status IN ('open', 'claimed')),
           (SELECT count(*) FROM reviewapp_outcome o WHERE o.item_id = i.id),
           (SELECT count(*) FROM reviewapp_decision d
             WHERE d.item_id = i.id AND d.undone_at IS NULL)
    FROM reviewapp_item i
"""


@dataclass
class Tally:
    """What the clients saw: accepted item ids and errors by kind (thread-safe)."""

    accepted: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    retry_mismatches: int = 0
    decisions: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1


def _ingest(
    client: Client, slug: str, seeds, tally: Tally, stop: threading.Event, rng, interval: float
) -> None:
    """Submit new images with keys every `interval` s; one in ten retries an earlier key.

    The client retries 429 and 5xx answers itself (honouring Retry-After); what it gives up on
    is counted as an error, by the API's error code."""
    mine: list[tuple[str, int]] = []
    next_at = time.monotonic()
    while not stop.is_set():
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
        retry = mine and rng.random() < 0.1
        key, seed = rng.choice(mine) if retry else (None, next(seeds))
        key = key or f"soak-{seed}"
        try:
            item_id = client.submit(slug, digit_png(seed), key=key).item.id
        except HandoffError as exc:
            tally.error(f"ingest HTTP {exc.status} {exc.code}")
            continue
        with tally.lock:
            if retry:
                tally.retries += 1
                tally.retry_mismatches += int(tally.accepted.get(key) != item_id)
            else:
                tally.accepted[key] = item_id
                mine.append((key, seed))


def _review(http: Http, slug: str, labels, tally: Tally, stop: threading.Event, rng) -> None:
    """Claim, decide (a random label), claim the next, as the desk does; idle when empty."""
    base = f"/projects/{slug}/review"
    task = None
    while not stop.is_set():
        try:
            if task is None:
                status, body, _ = http.request("GET", f"{base}/next.json")
                if status != 200:
                    tally.error(f"claim HTTP {status}")
                    time.sleep(0.2)
                    continue
                task = json.loads(body)["task"]
                if task is None:
                    time.sleep(0.3)
                    continue
            fields = {"task": task["id"], "label": rng.choice(labels), "duration_ms": 900}
            status, body, _ = http.post_form(f"{base}/decide.json", fields)
        except OSError as exc:
            tally.error(f"review {type(exc).__name__}")
            task = None
            continue
        if status != 200:
            tally.error(f"decide HTTP {status}")
            task = None
            continue
        with tally.lock:
            tally.decisions += 1
        task = json.loads(body)["next"]


def _settled(stack) -> bool:
    """No item waits for a prediction or a reviewer any more."""
    return not stack.scalar(
        "SELECT count(*) FROM reviewapp_item WHERE prediction_due_at IS NOT NULL"
    ) and not stack.scalar(
        "SELECT count(*) FROM reviewapp_reviewtask WHERE status IN ('open', 'claimed')"
    )


def _final_check(stack, tally: Tally) -> dict:
    """Classify every item: one outcome, or waiting in exactly one queue; else lost/duplicated."""
    states = collections.Counter()
    for _id, due, predictions, waiting, outcomes, decisions in stack.sql(FINAL_STATE):
        if predictions > 1 or outcomes > 1 or waiting > 1 or decisions > 1:
            states["duplicated"] += 1
        elif outcomes == 1 and waiting == 0:
            states["outcome"] += 1
        elif outcomes == 0 and waiting == 1:
            states["waiting for review"] += 1
        elif outcomes == 0 and waiting == 0 and due:  # cleared only once routed
            states["waiting for prediction"] += 1
        elif outcomes == 1 and waiting == 1:
            states["duplicated"] += 1
        else:
            states["lost"] += 1
    stored = {row[0] for row in stack.sql("SELECT id FROM reviewapp_item")}
    accepted = set(tally.accepted.values())
    decided_by = dict(stack.sql("SELECT decided_by, count(*) FROM reviewapp_outcome GROUP BY 1"))
    return {
        "items_in": len(accepted),
        "idempotent_retries": tally.retries,
        "retry_mismatches": tally.retry_mismatches,
        "outcomes_out": states["outcome"],
        "by_model": decided_by.get("model", 0),
        "by_human": decided_by.get("human", 0),
        "waiting_review": states["waiting for review"],
        "waiting_prediction": states["waiting for prediction"],
        "lost": states["lost"] + len(accepted - stored),
        "duplicated": states["duplicated"],
        "unexpected_rows": len(stored - accepted),
        "decisions": tally.decisions,
        "errors": dict(tally.errors),
    }


def run_soak(
    stack, *, seconds: float, rate: float = 2.0, ingesters: int = 2, reviewers: int = 3, drain=60
) -> dict:
    """Seed, start web + worker + beat, run the clients for `seconds`, drain, check.

    `rate` is the total number of submissions per second of all ingest clients together.
    """
    seeded = stack.seed({**SEED_SPEC, "artifact": stack.artifact, "reviewers": reviewers})
    slug = seeded["slug"]
    labels = stack.artifact["metadata"]["labels"]
    stack.start_web(workers=3)
    stack.start_worker(concurrency=2)
    stack.start_beat(sweep_seconds=10)
    tally, seeds = Tally(), itertools.count(1)
    ingest_stop, review_stop = threading.Event(), threading.Event()
    threads = []
    clients = [
        Client(f"http://127.0.0.1:{stack.web_port}", seeded["token"], timeout=30)
        for _ in range(ingesters)
    ]
    for index, client in enumerate(clients):
        pace = ingesters / rate
        args = (client, slug, seeds, tally, ingest_stop, random.Random(index), pace)
        threads.append(threading.Thread(target=_ingest, args=args))
    for index, username in enumerate(seeded["reviewers"]):
        http = stack.http()
        http.log_in(username, seeded["password"])
        args = (http, slug, labels, tally, review_stop, random.Random(100 + index))
        threads.append(threading.Thread(target=_review, args=args))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    ingest_stop.set()
    for thread in threads[:ingesters]:  # the last submissions land before the drain starts
        thread.join(timeout=60)
    for client in clients:
        client.close()
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and not _settled(stack):
        time.sleep(1)
    review_stop.set()
    for thread in threads:
        thread.join(timeout=60)
    figures = _final_check(stack, tally)
    figures["seconds"] = round(time.monotonic() - started)
    figures["rate"] = rate
    return figures


@contextlib.contextmanager
def soak_stack():
    """A throwaway PostgreSQL cluster (migrated), a redis-server and a tiny trained model."""
    cluster = PgCluster(postgres_bin())
    try:
        cluster.start()
        database_url = cluster.database_create("soak")
        migrate(database_url)
        stack = Stack.create(database_url=database_url, prefix="handoff-soak-")
        try:
            stack.artifact = _train_artifact(stack.folder, database_url)
            yield stack
        finally:
            stack.remove()
    finally:
        cluster.destroy()


def _train_artifact(folder: Path, database_url: str) -> dict:
    """The tests' tiny model, trained on 400 digits in this process."""
    django_setup(database_url)
    from bench.harness import seeding  # the models: only once Django is set up
    from reviewapp import ml

    records = ml.render_demo_digits(folder / "digits")
    saved = seeding.tiny_model_train(
        records=records[:400], dest=folder / "artifact", dataset_hash="soak"
    )
    return seeding.artifact_spec(saved)


def _write(figures: dict, command: str) -> None:
    split = f"{figures['by_model']} / {figures['by_human']}"
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(figures["errors"].items())) or "none"
    rows = [
        ("items in (accepted by the API)", figures["items_in"]),
        ("idempotent retries (same key sent again)", figures["idempotent_retries"]),
        ("retries answered with another item", figures["retry_mismatches"]),
        ("outcomes out (model / human)", f"{figures['outcomes_out']} ({split})"),
        ("still waiting for a reviewer", figures["waiting_review"]),
        ("still waiting for a prediction", figures["waiting_prediction"]),
        ("lost", figures["lost"]),
        ("duplicated", figures["duplicated"]),
        ("rows nobody submitted", figures["unexpected_rows"]),
        ("reviewer decisions", figures["decisions"]),
        ("errors by kind", errors),
        ("wall seconds (run + drain)", figures["seconds"]),
    ]  # fmt: skip
    table = "| figure | value |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    section = (
        "## Soak: ingest and review together\n\n"
        f"Command: `{command}` (gunicorn 3 sync workers, one prefork worker with 2 processes, "
        "beat sweeping every 10 s, a throwaway PostgreSQL cluster and redis-server; 2 API "
        f"ingest clients paced together at {figures['rate']:g} submissions/s, 10% of them "
        "retries of an "
        "earlier key; 3 desk reviewers deciding as fast as the queue allows; project in the "
        "partial stage with a 50% sticky share (the tiny test model flags most digits "
        "out-of-domain, so most items still go to a reviewer); real handwritten digits; "
        "clients and servers on one 2-core machine shared with other jobs, so the rates are "
        "pessimistic, "
        f"measured {time.strftime('%Y-%m-%d')}). After the run the clients stop, the queues "
        "drain, and every item is classified from the database: one outcome, or waiting in "
        "exactly one queue; anything else counts as lost or duplicated.\n\n" + table
    )
    marked_section_write("soak", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=float, default=2.0, help="submissions per second")
    parser.add_argument("--ingesters", type=int, default=2)
    parser.add_argument("--reviewers", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with soak_stack() as stack:
        figures = run_soak(
            stack,
            seconds=args.seconds,
            rate=args.rate,
            ingesters=args.ingesters,
            reviewers=args.reviewers,
        )
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        _write(figures, ("python bench/soak.py " + " ".join(sys.argv[1:])).strip())
    if figures["lost"] or figures["duplicated"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
