"""Prediction workers yield the CPU to the web process (issue 17).

A `wait` request is answered by the web process while prediction workers drain a backlog on
the same cores. A prediction worker (every Celery worker that does not consume the training
queue) raises its nice value by HANDOFF_PREDICT_WORKER_NICE at start, before it forks its pool,
so the kernel runs the web process whenever it has work and the workers take the cycles left
over: while nothing else wants the CPU they drain as fast as before.

Nice values weigh processes against each other only within one scheduling group. With Linux's
autogroup on (/proc/sys/kernel/sched_autogroup_enabled) every session is a group of its own,
so a worker started in a session of its own (setsid: a process manager, the benchmarks) would
share the CPU with the web as an equal group whatever its nice value. Such a worker leads its
session, and then lowers its group's nice value too (/proc/self/autogroup, sched(7)); a worker
that shares its session (scripts/run.sh) leaves the group alone, the web is in it. Containers
(docker compose) are cgroups, which neither reaches across: there the worker service's CPU
weight (`cpu_shares`) does the same.

No Django imports here: the Celery app module loads this.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")
AUTOGROUP_SELF = Path("/proc/self/autogroup")
TRAINING_QUEUE = "training"


def predicts(queues: Iterable[str]) -> bool:
    """Whether a worker consuming ``queues`` is a prediction worker (not the training one)."""
    return TRAINING_QUEUE not in set(queues)


def autogroup_nice(path: Path = AUTOGROUP_SELF) -> int | None:
    """This session's autogroup nice value ("/autogroup-92 nice 0"), None when unreadable."""
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def autogroup_nice_raise(
    nice: int, *, switch: Path = AUTOGROUP_SWITCH, path: Path = AUTOGROUP_SELF
) -> bool:
    """Raise this session's autogroup nice value to ``nice`` when autogroup is on and this
    process leads its session (its group holds only what it started); True when it is set."""
    if nice <= 0 or os.getsid(0) != os.getpid():
        return False
    try:
        if switch.read_text().strip() != "1":
            return False
    except OSError:
        return False
    current = autogroup_nice(path)
    if current is None or current >= nice:
        return current is not None
    for attempt in range(2):
        try:
            path.write_text(str(nice))
            return True
        except OSError as exc:
            # The kernel allows one change of any autogroup per 100 ms to unprivileged callers.
            if exc.errno != errno.EAGAIN or attempt:
                logger.warning("worker.autogroup_nice_failed nice=%s error=%s", nice, exc)
                return False
            time.sleep(0.11)
    return False


def worker_priority_lower(*, nice: int, queues: Iterable[str]) -> int:
    """Lower a prediction worker's CPU priority by ``nice`` (inherited by its pool processes).

    Returns the process's nice value afterwards (unchanged for the training worker).
    """
    if nice <= 0 or not predicts(queues):
        return os.nice(0)
    value = os.nice(nice)
    grouped = autogroup_nice_raise(nice)
    logger.info("worker.priority nice=%s autogroup=%s", value, grouped)
    return value
