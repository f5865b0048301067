"""Prediction workers run below the web process's CPU priority, the training worker does not
(issue 17; config/worker_priority.py): real `celery worker` processes, their pools read in /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config import worker_priority
from tests.conftest import celery_worker_processes, wait_for

pytestmark = [pytest.mark.worker]


def _nice(pid: int) -> int:
    """Field 19 of /proc/PID/stat (after the command name, which may hold spaces)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _pool(pid: int) -> list[int]:
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in path.read_text().split()]
    return found


def _pool_of(process) -> list[int]:
    wait_for(lambda: _pool(process.pid), timeout=30, message="the worker forked no pool")
    return _pool(process.pid)


def test_a_prediction_worker_and_its_pool_run_niced(transactional_db, tmp_path):
    expected = min(19, os.nice(0) + 7)
    env = {"HANDOFF_PREDICT_WORKER_NICE": "7"}
    with celery_worker_processes(1, tmp_path, extra_env=env) as (worker,):
        pool = _pool_of(worker)
        assert _nice(worker.pid) == expected
        assert [_nice(pid) for pid in pool] == [expected] * len(pool)


def test_the_training_worker_keeps_its_priority(transactional_db, tmp_path):
    own = os.nice(0)
    env = {"HANDOFF_PREDICT_WORKER_NICE": "7"}
    with celery_worker_processes(1, tmp_path, extra_env=env, queue="training") as (worker,):
        pool = _pool_of(worker)
        assert [_nice(pid) for pid in [worker.pid, *pool]] == [own] * (1 + len(pool))


@pytest.mark.skipif(
    worker_priority.autogroup_nice() is None
    or Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() != "1",
    reason="the kernel's autogroup scheduling is off",
)
def test_a_worker_leading_its_session_lowers_its_autogroup_too(transactional_db, tmp_path):
    """Under autogroup a session is weighed as a whole: a worker's own nice would not count."""
    ours = worker_priority.autogroup_nice()
    env = {"HANDOFF_PREDICT_WORKER_NICE": "7"}
    with celery_worker_processes(1, tmp_path, extra_env=env, new_session=True) as (worker,):
        _pool_of(worker)
        group = worker_priority.autogroup_nice(Path(f"/proc/{worker.pid}/autogroup"))
        assert group == 7
    assert worker_priority.autogroup_nice() == ours  # this test's own group is untouched


def test_the_autogroup_is_left_alone_by_a_worker_sharing_its_session(tmp_path):
    """The web may be in the same session (scripts/run.sh): its group must keep its weight."""
    switch, group = tmp_path / "switch", tmp_path / "autogroup"
    switch.write_text("1\n")
    group.write_text("/autogroup-5 nice 0\n")
    if os.getsid(0) == os.getpid():
        pytest.skip("this test process leads its session")
    assert not worker_priority.autogroup_nice_raise(7, switch=switch, path=group)
    assert group.read_text() == "/autogroup-5 nice 0\n"
