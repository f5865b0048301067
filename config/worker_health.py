"""Worker readiness: a heartbeat file touched while the worker's consumer is connected.

A Celery consumer bootstep writes ``{"node", "pid", "at"}`` to the heartbeat file when the
consumer starts (connected to the broker, consuming) and every few seconds after, from the
worker's main process, so a long task in a pool process does not stop it. When the consumer
stops (broker connection lost, shutdown) the file is removed. ``manage.py worker_ready`` reads
it: fresh means ready. No Django imports here: the Celery app module loads this.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from celery import bootsteps

logger = logging.getLogger(__name__)
STALE_AFTER_BEATS = 4  # a file older than this many intervals means the worker is stuck


def heartbeat_write(path: Path, *, node: str) -> None:
    """Write the heartbeat atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"node": node, "pid": os.getpid(), "at": time.time()}))
    os.replace(temporary, path)


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the last beat (None: no readable heartbeat)."""
    try:
        beat = json.loads(path.read_text())
        return max(0.0, time.time() - float(beat["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class HeartbeatFile(bootsteps.StartStopStep):
    """Consumer step: beat while consuming, remove the file when the consumer stops."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        from django.conf import settings

        super().__init__(parent, **kwargs)
        self.path = Path(settings.HANDOFF_WORKER_HEARTBEAT_FILE)
        self.interval = float(settings.HANDOFF_WORKER_HEARTBEAT_SECONDS)
        self.timer_ref = None

    def _beat(self, consumer) -> None:
        try:
            heartbeat_write(self.path, node=consumer.hostname)
        except OSError:
            logger.exception("worker.heartbeat_failed path=%s", self.path)

    def start(self, parent) -> None:
        """Beat now and every interval."""
        self._beat(parent)
        self.timer_ref = parent.timer.call_repeatedly(
            self.interval, self._beat, (parent,), priority=10
        )
        logger.info("worker.heartbeat_started path=%s every=%s", self.path, self.interval)

    def stop(self, parent) -> None:
        """Stop beating and remove the file: this worker is not consuming."""
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
        self.path.unlink(missing_ok=True)

    def shutdown(self, parent) -> None:
        """Same as stop."""
        self.stop(parent)
