"""Throwaway servers (a PostgreSQL cluster, a redis-server: never the shared ones on 5432/6379)
and the command lines of Handoff's own processes (gunicorn, Celery worker and beat)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg

from bench.harness.processes import Process, ProcessGroup, free_port, port_open, wait_until

BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


def venv_tool(name: str) -> Path:
    """A console script installed next to this Python (gunicorn)."""
    return Path(sys.executable).parent / name


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin that has initdb, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(candidates[-1]).parent if candidates else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


def servers_missing() -> str | None:
    """Why throwaway servers cannot run on this machine, or None when they can."""
    if postgres_bin() is None:
        return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser (initdb refuses root)"
    if not venv_tool("gunicorn").exists():
        return "gunicorn is not installed in the venv"
    return None


class PgCluster:
    """A throwaway PostgreSQL cluster (initdb in a temp folder, run as `postgres`)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="handoff-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self._as_postgres(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
            "-E", "UTF8",
        )  # fmt: skip

    def _as_postgres(self, tool: str, *args: str, check: bool = True):
        command = ["runuser", "-u", "postgres", "--", str(self.bindir / tool), *args]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c max_connections=200"
        log = str(self.folder / "server.log")
        self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        status = self._as_postgres("pg_ctl", "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def execute(self, sql: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)

    def database_create(self, name: str, *, template: str | None = None) -> str:
        """A new database (a copy of `template` when given); returns its URL."""
        copy = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def database_drop(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    """A private `redis-server` on a free port, without persistence; start/stop at will."""

    def __init__(self, group: ProcessGroup) -> None:
        self.port = free_port()
        self.group = group
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no"]
        self.process = self.group.start(f"redis-{self.port}", command, env=dict(os.environ))
        wait_until(lambda: port_open(self.port), timeout=15, what="redis-server")

    def stop(self) -> None:
        """Kill it (SIGKILL): queued messages are lost, as in a crash without persistence."""
        if self.process is not None:
            self.process.kill()
            self.process = None
        wait_until(lambda: not port_open(self.port), timeout=10, what="redis to stop")


def gunicorn_command(*, port: int, workers: int, timeout: int = 60, threads: int = 1) -> list[str]:
    """gunicorn serving config.wsgi on 127.0.0.1:port (gthread workers when `threads` > 1)."""
    command = [str(venv_tool("gunicorn")), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--timeout", str(timeout), "--graceful-timeout", "5"]
    command += ["--log-level", "warning"]
    if threads > 1:  # gthread workers keep the clients' connections alive between requests
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    return command


def celery_worker_command(
    *, name: str, queue: str = "default", concurrency: int = 1, prefetch: int | None = None
) -> list[str]:
    """A prefork `celery worker` on one queue, with a unique node name."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
    command += ["-c", str(concurrency), "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"]
    if prefetch is not None:
        command += ["--prefetch-multiplier", str(prefetch)]
    command += ["--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    return command


def celery_beat_command(*, schedule: Path, loglevel: str = "INFO") -> list[str]:
    """`celery beat` with the database scheduler (entries written by `manage.py beat_setup`)."""
    command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", loglevel]
    command += ["--scheduler", BEAT_SCHEDULER, "--pidfile=", "--schedule", str(schedule)]
    return command


def worker_ready(process: Process, *, timeout: float = 90) -> Process:
    """Wait until a Celery worker logs `ready.`; returns it (raises if it died)."""
    process.wait_for_log("ready.", timeout=timeout)
    return process
