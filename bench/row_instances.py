"""Python CPU of one model read by primary key: ``RawQuerySet`` against reviewapp.fastpaths.rows.

Both run the same statement on the same connection; the difference is what each does with the
row. Needs a migrated PostgreSQL database (e.g. the one bench/review_cost.py leaves behind); the
project it reads is created in a transaction that is rolled back.

    .venv/bin/python bench/row_instances.py --database-url postgres://postgres@127.0.0.1:5432/handoff_bench_review_cost
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _per_call_us(function, calls: int, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(calls):
            function()
        times.append((time.process_time() - started) / calls * 1e6)
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    os.environ.update(DATABASE_URL=args.database_url, LOG_LEVEL="WARNING", DEBUG="0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection, transaction

    from reviewapp.fastpaths import rows
    from reviewapp.models import Project

    sql = f"SELECT {rows.columns(Project, 'p')} FROM reviewapp_project p WHERE p.id = %s"  # noqa: S608

    with transaction.atomic():
        pk = Project.objects.create(slug="row-instances", name="Rows", labels=["a", "b"]).pk

        def raw_queryset():
            return list(Project.objects.raw(sql, [pk]))[0]

        def row_instance():
            with connection.cursor() as cursor:
                cursor.execute(sql, [pk])
                return rows.instance(Project, cursor.fetchone())

        result = {
            "raw_queryset_us": _per_call_us(raw_queryset, args.calls, 5),
            "rows_instance_us": _per_call_us(row_instance, args.calls, 5),
        }
        transaction.set_rollback(True)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
