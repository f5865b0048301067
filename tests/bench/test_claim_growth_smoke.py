"""Smoke test of bench/claim_growth.py: it runs, every measured claim claims a task, and it
reports one figure per decision-table size."""

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


def test_claim_growth_reports_a_cost_per_size():
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        pytest.skip("the claim benchmark runs on PostgreSQL")
    parts = urllib.parse.urlsplit(database_url)
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    command = [sys.executable, "bench/claim_growth.py", "--sizes", "200", "1000", "--runs", "20"]
    command += ["--admin-url", admin_url, "--database", f"{parts.path.strip('/')}_claim_growth"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [row["decisions"] for row in rows] == [200, 1000]
    assert all(row["postgres_cpu_us_per_claim"] > 0 for row in rows)
