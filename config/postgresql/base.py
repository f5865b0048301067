"""Django's PostgreSQL backend with a health check that needs no round trip to pass.

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` on a persistent connection before the first
query of every request, so that a connection the server has closed (a restart, an idle
timeout, an administrator's terminate) is replaced before it fails a request. A server that
closes a connection says so on the socket: its FATAL message and the end of the stream make
the socket readable. A healthy idle connection has nothing to read. So a connection whose socket
has nothing waiting passes at the cost of one ``poll``; one with data waiting, or that psycopg
already knows is closed or broken, takes Django's own check (``SELECT 1``), which replaces it
when it fails. tests/resilience/test_database_restart.py restarts PostgreSQL under a running
site and checks that the first requests afterwards succeed.

The desk asks for this on every decision; the round trip was ~4% of a request's CPU in Python
and as much again in PostgreSQL (bench/review_load.py's yardstick).
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and _nothing_to_read(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()


def _nothing_to_read(connection) -> bool:
    """True when the connection is open and its socket has no data waiting (no FATAL, no EOF)."""
    if connection.closed or connection.broken:
        return False
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError):  # no socket to poll: let the real check decide
        return False
