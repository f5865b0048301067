"""schemathesis against the live OpenAPI schema: no 5xx, responses match the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reviewapp.intake import services
from reviewapp.models import Outcome, Webhook
from tests.api.conftest import Api
from tests.factories import ProjectFactory, png_bytes

ST = Path(sys.executable).with_name("st")


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(live_server, tmp_path):
    project = ProjectFactory(slug="fuzz", labels=["cat", "dog"])
    api = Api(project=project, name="schemathesis")
    api.client_row.throttle_rate = "100000/min"
    api.client_row.save()
    item, _ = services.item_ingest(project=project, data=png_bytes(1), enqueue_prediction=False)
    Outcome.objects.create(item=item, label="cat", decided_by="human")
    Webhook.objects.create(client=api.client_row, url="http://127.0.0.1:9/hook", secret="s")
    command = [
        str(ST),
        "run",
        f"{live_server.url}/api/v1/schema/",
        "--header",
        f"Authorization: Bearer {api.token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        "20",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "7",
        "--generation-database",
        "none",
        "--max-time",
        "100",
        "--request-timeout",
        "30",
        "--report-dir",
        str(tmp_path),
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=220)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output.lower(), output[-3000:]
