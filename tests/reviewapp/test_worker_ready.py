"""A real worker beats a heartbeat file while consuming; `worker_ready` reads it."""

import json
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heartbeat_file(tmp_path, monkeypatch, settings):
    path = tmp_path / "worker.heartbeat"
    monkeypatch.setenv("HANDOFF_WORKER_HEARTBEAT_FILE", str(path))
    monkeypatch.setenv("HANDOFF_WORKER_HEARTBEAT_SECONDS", "1")
    settings.HANDOFF_WORKER_HEARTBEAT_FILE = str(path)
    return path


def test_worker_is_ready_while_running_and_not_after(heartbeat_file, celery_worker, capsys):
    wait_for(heartbeat_file.exists, timeout=30, message="the worker wrote no heartbeat")
    first = heartbeat_file.read_text()
    wait_for(lambda: heartbeat_file.read_text() != first, timeout=10, message="no second beat")
    call_command("worker_ready", "--max-age", "5")
    assert "ready" in capsys.readouterr().out
    celery_worker.terminate()
    celery_worker.wait(timeout=30)
    assert not heartbeat_file.exists()
    with pytest.raises(CommandError, match="no heartbeat"):
        call_command("worker_ready")


def test_a_stale_heartbeat_is_not_ready(heartbeat_file):
    heartbeat_file.write_text(json.dumps({"node": "old@host", "pid": 1, "at": time.time() - 600}))
    with pytest.raises(CommandError, match="last heartbeat"):
        call_command("worker_ready", "--max-age", "60")
