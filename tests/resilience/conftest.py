"""Fixtures of the fault tests: a throwaway PostgreSQL cluster (session), a private
redis-server and a Stack (database from a migrated template, media folder, processes) per test,
all from bench.harness.

Everything started here is stopped at teardown, whatever the test did. A missing real part
(initdb, redis-server, gunicorn) skips the folder with the reason.
"""

from __future__ import annotations

import os
import uuid

import pytest

from bench.harness.database import migrate
from bench.harness.seeding import artifact_spec as spec_of
from bench.harness.servers import PgCluster, postgres_bin, servers_missing
from bench.harness.stack import Stack

TEMPLATE_DB = "handoff_template"


def pytest_collection_modifyitems(config, items):
    reason = servers_missing()
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
    migrate(pg_cluster.database_create(TEMPLATE_DB))
    return TEMPLATE_DB


@pytest.fixture(scope="session")
def artifact_spec(tiny_artifact) -> dict:
    return spec_of(tiny_artifact)


@pytest.fixture
def stack(pg_cluster, stack_template, request):
    """A fresh database, a private redis-server and a media folder; processes stopped after."""
    if not pg_cluster.running():  # a previous test stopped it and failed before restarting
        pg_cluster.start()
    name = f"t_{uuid.uuid4().hex[:12]}"
    stack = Stack.create(database_url=pg_cluster.database_create(name, template=stack_template))
    try:
        yield stack
    finally:
        stack.group.stop_all()
        failed = getattr(request.node, "rep_call", None)
        if (failed is not None and failed.failed) or os.environ.get("RESILIENCE_SHOW_LOGS"):
            print(f"\n=== process logs of {request.node.name}\n{stack.group.logs()}")
        if pg_cluster.running():
            pg_cluster.database_drop(name)
        stack.remove()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
