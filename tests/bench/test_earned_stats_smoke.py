"""Smoke test of bench/earned_stats.py: it runs as one command and reports every row, with the
guarantees it is there to show holding on a small seeded run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_earned_stats_reports_ltt_and_monitor_rows():
    command = [sys.executable, "bench/earned_stats.py", "--runs", "40"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert [row["epsilon"] for row in result["ltt"]] == [0.02, 0.05, 0.05]
    assert all(row["violation_share"] <= row["delta"] + 0.05 for row in result["ltt"])
    broken = result["monitor_eps_1pct_alpha_5pct"][-1]
    assert broken["true_error"] == 0.1 and broken["demoted_share"] == 1.0
    assert result["clean_blind_labels_per_class_delta5pct_10_classes"]["1%"] == 528
