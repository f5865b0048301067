"""Cost of one desk round trip in isolation: queries, server CPU and PostgreSQL CPU per request.

One reviewer posts ``decide.json`` (record the decision, claim the next task) sequentially
through Django's full request stack (middleware, sessions, auth) in this process, against a
throwaway PostgreSQL database. CPU time is much less sensitive to other load on the machine than
latency: Python's is this process's CPU time, PostgreSQL's is read from its backend's
``/proc/<pid>/stat``.

    .venv/bin/python bench/review_cost.py --requests 500
    .venv/bin/python bench/review_cost.py --requests 300 --stock access   # one fast path off

``--stock NAME`` (repeatable) runs the request with that fast path replaced by the stock
Django or library path it stands in for, to see what the fast path still saves
(docs/benchmarks.md, "Fast paths: what each one saves").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.database import database_arguments, database_prepare, database_url, django_setup
from bench.harness.machine import process_cpu_seconds

DB_NAME = "handoff_bench_review_cost"


def _stock_settings(settings, name: str) -> None:
    """Put back the stock path for a fast path that is chosen in settings (before setup)."""
    if name == "prepared":
        settings.DATABASES["default"]["OPTIONS"] = {}


def _stock_code(name: str) -> None:
    """Put back the stock path for a fast path that is code (after setup)."""
    if name == "access":
        from reviewapp.fastpaths import access

        access.project_with_access = lambda user, slug: None  # the ORM's and backends' check


STOCK = ("prepared", "access")


def measure(requests: int) -> dict:
    """Seed, log one reviewer in, post `requests` decisions one after another."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from bench.harness import seeding  # the models: after django.setup()

    project, usernames = seeding.review_queue_seed(1, requests + 1, f"cost{int(time.time())}")
    client = Client(HTTP_HOST="127.0.0.1")
    # force_login: django-axes's backend refuses an authenticate() call without a request.
    client.force_login(get_user_model().objects.get(username=usernames[0]))
    base = f"/projects/{project.slug}/review"
    task = client.get(f"{base}/next.json").json()["task"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    latencies, queries = [], []
    connection.force_debug_cursor = True  # log queries (each request starts the log afresh)
    cpu0, pg0, wall0 = time.process_time(), process_cpu_seconds(backend), time.perf_counter()
    for _ in range(requests):
        started = time.perf_counter()
        response = client.post(
            f"{base}/decide.json",
            {"task": task["id"], "label": "1", "duration_ms": 500, "held": task["id"]},
        )
        latencies.append((time.perf_counter() - started) * 1000)
        queries.append(len(connection.queries_log))
        assert response.status_code == 200, response.content
        task = response.json()["next"]
    cpu = time.process_time() - cpu0
    pg = process_cpu_seconds(backend) - pg0
    wall = time.perf_counter() - wall0
    return {
        "requests": requests,
        "queries_per_request": round(statistics.mean(queries), 2),
        "wall_ms": round(wall / requests * 1000, 2),
        "p50_ms": round(statistics.median(latencies), 2),
        "python_cpu_ms": round(cpu / requests * 1000, 2),
        "postgres_cpu_ms": round(pg / requests * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    database_arguments(parser)
    parser.add_argument("--reuse-db", action="store_true", help="skip drop/create/migrate")
    parser.add_argument("--db-name", default=DB_NAME, help="the throwaway database's name")
    parser.add_argument(
        "--stock", action="append", choices=STOCK, default=[], help="fast path to switch off"
    )
    args = parser.parse_args()
    env = {"LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "600", "DEBUG": "0"}
    if args.reuse_db:
        url = database_url(admin_url=args.admin_url, name=args.db_name)
    else:
        url = database_prepare(admin_url=args.admin_url, name=args.db_name)
    os.environ.update(DATABASE_URL=url, **env)  # the settings read them when first touched
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    for name in args.stock:
        _stock_settings(settings, name)
    django_setup(url, **env)
    for name in args.stock:
        _stock_code(name)
    print(json.dumps({"stock": args.stock, **measure(args.requests)}), flush=True)


if __name__ == "__main__":
    main()
