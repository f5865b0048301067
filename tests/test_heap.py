"""Server processes keep their long-lived objects out of the garbage collector's full
collections (config/heap.py): the web process freezes what start-up loaded, a model load
freezes the model, and other processes (this test run) leave the collector as it is. Each case
runs in a fresh interpreter, so this process's collector is never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import gc, json
{setup}
start = gc.get_freeze_count()
from reviewapp import ml
ml.get_predictor(artifact_path={path!r}, sha256={sha!r})
after_model = gc.get_freeze_count()
print(json.dumps({{"start": start, "after_model": after_model,
                  "walked": len(gc.get_objects())}}))
"""


def _probe(setup: str, artifact, tmp_path) -> dict:
    code = PROBE.format(setup=setup, path=str(artifact.path), sha=artifact.sha256)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'heap.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_web_process_freezes_start_up_and_each_model(tiny_artifact, tmp_path):
    web = _probe("import config.wsgi", tiny_artifact, tmp_path)
    assert web["start"] > 100_000  # Django, DRF and the project's modules
    assert web["after_model"] > web["start"]  # torch and the model's objects joined them
    plain = _probe("import django; django.setup()", tiny_artifact, tmp_path)
    assert plain["start"] == plain["after_model"] == 0  # not a server process: untouched
    # What a full collection walks: only what is new in the server process, everything here.
    assert web["walked"] < 10_000 < plain["walked"], (web, plain)
