"""A running Handoff for fault tests and the soak: gunicorn, Celery worker and beat on a private
database (usually on a throwaway PostgreSQL cluster) and a private redis-server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.harness import ROOT
from bench.harness.client import Http
from bench.harness.processes import Process, ProcessGroup, free_port, http_wait
from bench.harness.servers import (
    RedisServer,
    celery_beat_command,
    celery_worker_command,
    gunicorn_command,
    worker_ready,
)


@dataclass
class Stack:
    """The environment shared by every process of one run, and what they started."""

    database_url: str
    broker: RedisServer
    folder: Path
    group: ProcessGroup
    seeded: dict = field(default_factory=dict)
    artifact: dict = field(default_factory=dict)  # path, sha256, metadata of the model
    web_port: int = 0

    @classmethod
    def create(cls, *, database_url: str, prefix: str = "handoff-stack-") -> Stack:
        """A media folder, a process group and a started redis-server for `database_url`."""
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        group = ProcessGroup(folder / "logs")
        broker = RedisServer(group)
        stack = cls(database_url=database_url, broker=broker, folder=folder, group=group)
        try:
            stack.broker.start()
        except BaseException:
            stack.remove()
            raise
        return stack

    def remove(self) -> None:
        """Stop every process and delete the folder (media, logs); idempotent."""
        self.group.stop_all()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def media(self) -> Path:
        return self.folder / "media"

    def env(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_BROKER")}
        env.update(
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=self.broker.url,
            MEDIA_ROOT=str(self.media),
            ARTIFACTS_ROOT=str(self.folder / "artifacts"),
            HANDOFF_VAR_DIR=str(self.folder / "var"),
            HANDOFF_ENV="development",
            DEBUG="0",
            LOG_LEVEL="INFO",
            DB_CONN_MAX_AGE="60",
            HANDOFF_API_THROTTLE_RATE="100000/min",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [sys.executable, "manage.py", *args]
        return subprocess.run(
            command, cwd=ROOT, env=self.env(), capture_output=True, text=True, check=check,
            timeout=300,
        )  # fmt: skip

    def seed(self, spec: dict) -> dict:
        """Seed the database (bench.harness.seed_stack); returns and keeps what it made."""
        command = [sys.executable, "-m", "bench.harness.seed_stack", json.dumps(spec)]
        done = subprocess.run(
            command, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=300
        )
        if done.returncode:
            raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
        self.seeded = json.loads(done.stdout.strip().splitlines()[-1])
        return self.seeded

    def start_web(self, *, workers: int = 2, name: str = "web", **env: str) -> Process:
        """gunicorn on a free port; returns the process once it answers HTTP."""
        self.web_port = free_port()
        command = gunicorn_command(port=self.web_port, workers=workers)
        process = self.group.start(name, command, env=self.env(**env))
        http_wait(port=self.web_port, timeout=60)
        return process

    def start_worker(self, *, name: str = "worker", concurrency: int = 1, **env: str) -> Process:
        """A real prefork `celery worker` on the default queue; returns once it is ready."""
        command = celery_worker_command(name=name, concurrency=concurrency)
        return worker_ready(self.group.start(name, command, env=self.env(**env)))

    def start_beat(self, *, sweep_seconds: int = 2) -> Process:
        """`celery beat` with the database scheduler and a fast prediction sweep."""
        self.manage("beat_setup", "--prediction-seconds", str(sweep_seconds))
        command = celery_beat_command(schedule=self.folder / "beat-schedule")
        return self.group.start("beat", command, env=self.env())

    def sql(self, query: str, *params) -> list[tuple]:
        """Run one query on the stack's database (a fresh connection each time)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def scalar(self, query: str, *params):
        return self.sql(query, *params)[0][0]

    def http(self, *, token: str = "") -> Http:
        return Http(self.web_port, token=token)
