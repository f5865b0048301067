"""The running system the replay talks to: gunicorn, a default and a training Celery worker, and
beat, each its own process group on the replay's own database and broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, http_wait


class Stack:
    """Start and stop the web server, workers and beat; logs go to `log_dir`."""

    def __init__(self, *, env: dict[str, str], port: int, log_dir: Path, web_workers: int = 2):
        self.env, self.port, self.log_dir, self.web_workers = env, port, log_dir, web_workers
        self.processes: dict[str, subprocess.Popen] = {}
        self.drift = True
        log_dir.mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, command: list[str]) -> Path:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("w") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return log_path

    def _celery(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "config", *args]

    def _wait_ready(self, name: str, log_path: Path, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while "ready." not in log_path.read_text():
            if self.processes[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)

    def start(self) -> None:
        """Start everything and wait until the site answers and both workers are ready."""
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self._spawn(
            "web",
            [
                gunicorn,
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.web_workers),
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
        )
        logs = {
            "worker": self._spawn(
                "worker",
                self._celery(
                    "worker",
                    "-Q",
                    "default",
                    "-c",
                    "1",
                    "-n",
                    f"replay-default-{os.getpid()}@%h",
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                ),
            ),
            "training": self._spawn(
                "training",
                self._celery(
                    "worker",
                    "-Q",
                    "training",
                    "-c",
                    "1",
                    "--prefetch-multiplier",
                    "1",
                    "-n",
                    f"replay-training-{os.getpid()}@%h",
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                ),
            ),
        }
        self._spawn(
            "beat",
            self._celery(
                "beat",
                "--loglevel",
                "WARNING",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile=",
                "--schedule",
                str(self.log_dir / "beat-schedule"),
            ),
        )
        http_wait(port=self.port, timeout=120)
        for name, log_path in logs.items():
            self._wait_ready(name, log_path)

    def stop(self) -> None:
        """SIGTERM each process group, then SIGKILL what is still there after 30 s."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
