"""PostgreSQL CPU of one claim as the decision table grows (issue 4: the claim's scalability).

Every desk decision claims the next task, so a claim whose cost grows with the decisions ever
made slows every reviewer down month after month. This seeds a project with open tasks, then
grows the decision table (another project's history) to each size in turn, runs ANALYZE, and
measures the PostgreSQL backend's CPU time (/proc/<pid>/schedstat) per claim transaction
(BEGIN, the claim statement, ROLLBACK, so every run claims the same way), after enough runs
that the statement is prepared and planned.

    .venv/bin/python bench/claim_growth.py
    git show ffc367b:reviewapp/queue_sql.py > /tmp/old_sql.py
    .venv/bin/python bench/claim_growth.py --queue-sql /tmp/old_sql.py   # an earlier statement
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.database import analyze, database_arguments, database_prepare, django_setup

DB_NAME = "handoff_bench_claim_growth"
# Bound as parameters by earlier versions of the statement; the current one ignores them.
CONSTANTS = {
    "open": "open",
    "claimed": "claimed",
    "skip": "skip",
    "double_review": "double_review",
    "adjudication": "adjudication",
}


def _backend_cpu_us(pid: int) -> float:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1000


def _claim_sql(path: str | None) -> str:
    if path is None:
        from reviewapp.review import claim

        return claim.CLAIM
    spec = importlib.util.spec_from_file_location("queue_sql_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CLAIM


def measure(sizes: list[int], runs: int, sql: str) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from bench.harness.seeding import review_queue_seed  # the models: after django.setup()
    from reviewapp.models import Decision, ReviewTask

    project, usernames = review_queue_seed(1, 500, "claims")
    reviewer = get_user_model().objects.get(username=usernames[0])
    history, _ = review_queue_seed(1, 2000, "history")
    done = list(ReviewTask.objects.filter(project=history))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def claim(params: dict) -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                if len(cursor.fetchall()) != 1:
                    raise RuntimeError("the claim claimed nothing: the figures would be wrong")
            transaction.set_rollback(True)

    results = []
    for size in sizes:
        missing = size - Decision.objects.count()
        Decision.objects.bulk_create(
            (
                Decision(task=t, item_id=t.item_id, reviewer=reviewer, verdict="correct", label="1")
                for t in (done[i % len(done)] for i in range(max(missing, 0)))
            ),
            batch_size=5000,
        )
        analyze()
        now = timezone.now()
        params = {
            "project": project.pk,
            "reviewer": reviewer.pk,
            "now": now,
            "lease": now + timedelta(minutes=5),
            "holding": [],
            "may_adjudicate": False,
            **CONSTANTS,
        }
        for _ in range(10):  # past psycopg's prepare threshold and PostgreSQL's 5 custom plans
            claim(params)
        started = _backend_cpu_us(backend)
        for _ in range(runs):
            claim(params)
        per_claim = (_backend_cpu_us(backend) - started) / runs
        results.append({"decisions": size, "postgres_cpu_us_per_claim": round(per_claim)})
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 50000])
    parser.add_argument("--runs", type=int, default=300, help="claims measured per size")
    parser.add_argument("--queue-sql", help="a queue_sql.py file whose CLAIM to measure")
    database_arguments(parser, name=DB_NAME)
    args = parser.parse_args()
    url = database_prepare(admin_url=args.admin_url, name=args.database)
    django_setup(url, LOG_LEVEL="WARNING", DB_CONN_MAX_AGE="600")
    started = time.perf_counter()
    measure(sorted(args.sizes), args.runs, _claim_sql(args.queue_sql))
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
