"""Smoke test of the desk load benchmark: bench/review_load.py end to end at tiny scale.

gunicorn on its own PostgreSQL database, 3 reviewer clients over HTTP deciding 60 items, then the
database check and the renew.json yardstick. The figures themselves are for docs/benchmarks.md;
this checks that the harness runs and that its safety accounting holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        pytest.skip("the desk benchmark runs on PostgreSQL")
    parts = urllib.parse.urlsplit(database_url)
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    command = [sys.executable, "bench/review_load.py", "--clients", "3", "--items", "60"]
    command += ["--think-ms", "0", "--floor-seconds", "2", "--no-write", "--port", "8768"]
    command += ["--admin-url", admin_url, "--database", f"{parts.path.strip('/')}_review_load"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_every_item_is_decided_once_and_none_is_left(rows):
    run = rows[0]
    assert (run["clients"], run["items"], run["decisions"]) == (3, 60, 60)
    assert run["decided_twice"] == 0 and run["left_undecided"] == 0 and run["errors"] == 0
    assert run["outcomes"] == 60
    assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]
    assert run["server_cpu_ms"] > 0 and run["postgres_cpu_ms"] > 0


def test_the_yardstick_measures_signed_in_requests(rows):
    floor = rows[-1]["floor"]
    assert floor["clients"] == 3 and floor["errors"] == 0
    assert floor["requests"] > 0 and floor["requests_per_s"] > 0
