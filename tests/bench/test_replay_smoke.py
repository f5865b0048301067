"""Smoke test of the replay benchmark: `python -m bench.replay` end to end at tiny scale.

It starts the whole system (gunicorn, a default and a training Celery worker, beat) on its own
PostgreSQL database and the configured Redis broker, streams 24 digits through the API with a
night shift, lets simulated reviewers answer over HTTP under all three arms, and then checks the
accounting: every streamed item ends with an outcome or in a review queue, and the numbers add up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.worker, pytest.mark.postgres]


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> dict:
    """Run the harness once (--smoke) and return its results.json."""
    database_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith("postgres") or not broker.startswith("redis"):
        pytest.skip("the replay runs on PostgreSQL + Redis")
    parts = urllib.parse.urlsplit(database_url)
    if not _reachable(parts.hostname or "127.0.0.1", parts.port or 5432):
        pytest.skip("PostgreSQL is not reachable")
    out = tmp_path_factory.mktemp("replay")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    command = [sys.executable, "-m", "bench.replay", "--smoke", "--no-write", "--out", str(out)]
    command += ["--admin-url", admin_url, "--database", f"{parts.path.strip('/')}_replay_smoke"]
    command += ["--port", "8767", "--arms", "manual", "threshold", "handoff"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads((out / "results.json").read_text())


def test_every_streamed_item_ends_decided_or_queued(replay):
    meta, results = replay["meta"], replay["results"]
    assert [r["arm"] for r in results] == ["manual", "threshold", "handoff"]
    for r in results:
        t = r["totals"]
        assert t["items"] == meta["stream"] == 24, r["arm"]
        assert t["auto"] + t["human"] + t["queued"] + t["pending"] == t["items"], r["arm"]
        assert t["pending"] == 0, f"{r['arm']}: items that never reached the router"
        assert not r["client_errors"], r["client_errors"]


def test_the_numbers_add_up(replay):
    for r in replay["results"]:
        t = r["totals"]
        assert sum(p["items"] for p in r["phases"].values()) == t["items"]
        assert sum(p["auto"] for p in r["phases"].values()) == t["auto"]
        assert sum(p["auto"] for p in r["series"]) == t["auto"]
        assert 0 <= t["solo_wrong"] <= t["auto"]
        assert 0 <= t["final_wrong"] <= t["auto"] + t["human"]
        assert r["human_decisions"] >= t["human"]
        assert r["champions"] and r["champions"][0]["version"] == 1
        assert r["throughput"] > 0


def test_the_arms_behave_as_configured(replay):
    by_arm = {r["arm"]: r for r in replay["results"]}
    manual, threshold = by_arm["manual"], by_arm["threshold"]
    assert manual["totals"]["auto"] == 0  # a human decides every item
    assert manual["human_decisions"] == manual["totals"]["human"]  # one decision per item
    # The shift switched on and off inside the stream; the night items exist in every arm.
    assert 0 < manual["onset_index"] < manual["recovery_index"] < manual["totals"]["items"]
    assert manual["phases"]["shift"]["items"] > 0
    # Only Handoff retrains and has an admin acting; the baselines never do.
    assert manual["training_runs"] == [] and threshold["training_runs"] == []
    assert manual["admin_actions"] == [] and threshold["admin_actions"] == []
