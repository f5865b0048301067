"""Soak (bounded): API ingest and desk reviewers together over HTTP against gunicorn + a real
worker on PostgreSQL + Redis; every accepted item ends with exactly one outcome or waits in
exactly one queue. bench/soak.py runs the same scenario longer and records the figures."""

from __future__ import annotations

import json
import os

from bench.soak import run_soak

SECONDS = float(os.environ.get("HANDOFF_SOAK_SECONDS", "45"))


def test_soak_ingest_and_review_lose_and_duplicate_nothing(stack, artifact_spec):
    stack.artifact = artifact_spec
    figures = run_soak(stack, seconds=SECONDS, ingesters=2, reviewers=3, drain=60)
    print(json.dumps(figures, indent=2))
    assert figures["items_in"] > 0 and figures["decisions"] > 0, figures
    assert figures["lost"] == 0, figures
    assert figures["duplicated"] == 0, figures
    assert figures["unexpected_rows"] == 0, figures
    assert figures["retry_mismatches"] == 0, figures
    assert (
        figures["outcomes_out"] + figures["waiting_review"] + figures["waiting_prediction"]
        == figures["items_in"]
    ), figures
    assert not {k: v for k, v in figures["errors"].items() if "HTTP 5" in k}, figures
