"""Fixtures of the fault tests: a throwaway PostgreSQL cluster (session), a private
redis-server and a Stack (database from a migrated template, media folder, processes) per test.

Everything started here is stopped at teardown, whatever the test did. A missing real part
(initdb, redis-server, gunicorn) skips the folder with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.resilience.servers import ROOT, PgCluster, ProcessGroup, RedisServer, postgres_bin
from tests.resilience.stack import Stack

TEMPLATE_DB = "handoff_template"


def _missing_part() -> str | None:
    if postgres_bin() is None:
        return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser (initdb refuses root)"
    if not (Path(sys.executable).parent / "gunicorn").exists():
        return "gunicorn is not installed in the venv"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing_part()
    ours = [item for item in items if "tests/resilience" in str(item.path)]
    for item in ours:
        item.add_marker(pytest.mark.resilience)
        item.add_marker(pytest.mark.worker)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"RESILIENCE TESTS SKIPPED: {reason}"))
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reason is not None and ours and reporter is not None:
        reporter.write_line(f"!! {len(ours)} resilience tests SKIPPED: {reason}", red=True)


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL cluster of our own (initdb in a temp folder, on a free port)."""
    cluster = PgCluster(postgres_bin())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def stack_template(pg_cluster) -> str:
    """A migrated database that each test's database is copied from."""
    pg_cluster.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    env = {**os.environ, "DATABASE_URL": pg_cluster.url(TEMPLATE_DB)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, check=True, timeout=300,
    )  # fmt: skip
    return TEMPLATE_DB


@pytest.fixture(scope="session")
def artifact_spec(tiny_artifact) -> dict:
    return {
        "path": str(tiny_artifact.path),
        "sha256": tiny_artifact.sha256,
        "metadata": tiny_artifact.metadata,
    }


@pytest.fixture
def stack(pg_cluster, stack_template, request):
    """A fresh database, a private redis-server and a media folder; processes stopped after."""
    if not pg_cluster.running():  # a previous test stopped it and failed before restarting
        pg_cluster.start()
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE "{stack_template}"')
    folder = Path(tempfile.mkdtemp(prefix="handoff-stack-"))
    (folder / "logs").mkdir()
    group = ProcessGroup(folder / "logs")
    broker = RedisServer(group)
    stack = Stack(database_url=pg_cluster.url(name), broker=broker, folder=folder, group=group)
    try:
        broker.start()
        yield stack
    finally:
        group.stop_all()
        failed = getattr(request.node, "rep_call", None)
        if (failed is not None and failed.failed) or os.environ.get("RESILIENCE_SHOW_LOGS"):
            print(f"\n=== process logs of {request.node.name}\n{group.logs()}")
        if pg_cluster.running():
            pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
