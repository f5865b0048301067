"""Helpers for training tests: a small labeled project and a real `training` worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bench.harness.seeding import base_items_ingest
from reviewapp.models import Project
from reviewapp.rollout import versions

ROOT = Path(__file__).resolve().parent.parent
FAST_PARAMS = {"arch": "resnet18", "epochs": 1, "image_size": 32, "batch_size": 32, "device": "cpu"}


def labeled_project(*, records, artifact=None, slug: str = "retrain-digits") -> Project:
    """A project whose base set is `records`, with the tiny artifact as champion when given."""
    project = Project.objects.create(
        slug=slug, name="Retrain digits", labels=[str(d) for d in range(10)], gate_min_reviews=5
    )
    base_items_ingest(project=project, records=records)
    if artifact is not None:
        versions.champion_register(project=project, artifact=artifact, reason="test champion")
    return project


class TrainingWorker:
    """A `celery worker -Q training -c 1` in its own process group (so SIGKILL takes it all)."""

    def __init__(self, *, database_url: str, media_dir, artifacts_dir, log_path: Path):
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(media_dir),
            "ARTIFACTS_ROOT": str(artifacts_dir),
            "PYTHONUNBUFFERED": "1",
            "HANDOFF_TRAINING_HEARTBEAT_SECONDS": "0.5",
            "HANDOFF_TRAIN_DEVICE": "cpu",
            "OMP_NUM_THREADS": "2",
        }
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "training"]
        command += ["-c", "1", "--prefetch-multiplier", "1", "--loglevel", "INFO"]
        command += ["-n", f"training-{uuid.uuid4().hex[:6]}@%h", "--without-gossip"]
        command += ["--without-mingle"]
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while "ready." not in log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"training worker did not start:\n{self.log_text()}")
            time.sleep(0.2)

    def log_text(self) -> str:
        return self.log_path.read_text()[-4000:]

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: no cleanup code runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._log.close()


@pytest.fixture
def training_worker_factory(transactional_db, media_dir, artifacts_dir, tmp_path):
    """Start real training workers on demand; all are stopped at the end."""
    from django.conf import settings

    from config.celery import app
    from tests.conftest import _database_url

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for folder in ("queue", "processed"):
            (settings.BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("training")  # purge() only drains the default queue
    workers = []

    def start() -> TrainingWorker:
        worker = TrainingWorker(
            database_url=_database_url(),
            media_dir=media_dir,
            artifacts_dir=artifacts_dir,
            log_path=tmp_path / f"training-worker-{len(workers)}.log",
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
