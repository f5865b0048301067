"""Shared fixtures: a tiny trained model, a real Celery worker process, media folders."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bench.harness.processes import wait_until
from reviewapp.rollout import versions

# Playwright's sync API runs an event loop in the test thread; the ORM calls in the same tests
# are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(autouse=True)
def _storage_dirs(request, media_dir, artifacts_dir):
    """Point media and artifacts at session folders (shared with any worker process)."""
    if request.config.pluginmanager.hasplugin("django") and "tests/mlcore" not in str(
        request.node.path
    ):
        settings = request.getfixturevalue("settings")
        settings.MEDIA_ROOT = media_dir
        settings.ARTIFACTS_ROOT = artifacts_dir
    yield


@pytest.fixture(scope="session")
def digit_records(tmp_path_factory):
    """scikit-learn's digits rendered to PNG (real images)."""
    from reviewapp import ml

    return ml.render_demo_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory, digit_records):
    """A small resnet18 trained once per session on 400 digits (seconds on a CPU)."""
    from reviewapp import ml

    dest = tmp_path_factory.mktemp("tiny-model") / "artifact"
    return ml.train_and_save(
        records=digit_records[:400],
        params={"arch": "resnet18", "epochs": 1, "image_size": 32, "device": "cpu"},
        dest=dest,
        dataset_hash="tests",
    )


@pytest.fixture
def champion_project(db, tiny_artifact):
    """A project in the shadow stage with the tiny model as champion."""
    from tests.factories import ProjectFactory

    project = ProjectFactory(labels=list(tiny_artifact.metadata["labels"]))
    versions.champion_register(project=project, artifact=tiny_artifact, reason="test champion")
    return project


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return (
        f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


@contextlib.contextmanager
def celery_worker_processes(
    count: int,
    tmp_path: Path,
    extra_env: dict | None = None,
    *,
    queue: str = "default",
    new_session: bool = False,
):
    """`count` real `celery worker` processes on the configured broker and the test database,
    consuming `queue`; with `new_session` each leads a session of its own (as under setsid)."""
    from django.conf import settings

    from config.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for folder in ("queue", "processed"):
            (settings.BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    app.control.purge()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ARTIFACTS_ROOT": str(settings.ARTIFACTS_ROOT),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    processes, logs = [], []
    try:
        for index in range(count):
            log_path = tmp_path / ("worker.log" if count == 1 else f"worker{index}.log")
            logs.append(log_path.open("w"))
            command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
            command += ["-c", "1", "-n", f"test-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "INFO"]
            command += ["--without-gossip", "--without-mingle"]
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=logs[-1], stderr=subprocess.STDOUT,
                start_new_session=new_session,
            )  # fmt: skip
            process.log_path = log_path
            processes.append(process)
        deadline = time.monotonic() + 120 * count  # side by side, on a busy machine too
        for process in processes:
            while "ready." not in process.log_path.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"celery worker did not start:\n{process.log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


@pytest.fixture
def celery_worker(transactional_db, media_dir, artifacts_dir, tmp_path):
    """A real `celery worker` process on the configured broker and the test database."""
    with celery_worker_processes(1, tmp_path) as (process,):
        yield process


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2, message: str = ""):
    """Poll until predicate() is truthy (the harness's wait_until); fail with message after."""
    try:
        return wait_until(predicate, timeout=timeout, what=message, interval=interval)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout}s: {message}")


@pytest.fixture(scope="session")
def drift_artifact(tmp_path_factory, digit_records):
    """A model trained like the demo's champion (digits 0..999), for drift monitoring tests."""
    from reviewapp import ml

    dest = tmp_path_factory.mktemp("drift-model") / "artifact"
    return ml.train_and_save(
        records=digit_records[:1000],
        params={"arch": "resnet18", "epochs": 2, "image_size": 32, "device": "cpu"},
        dest=dest,
        dataset_hash="tests-drift",
    )


@pytest.fixture
def drift_project(db, drift_artifact):
    """A project in the shadow stage whose champion is the drift test model."""
    from tests.factories import ProjectFactory

    project = ProjectFactory(labels=list(drift_artifact.metadata["labels"]))
    versions.champion_register(project=project, artifact=drift_artifact, reason="drift champion")
    return project
