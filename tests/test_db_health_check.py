"""config.postgresql: the per-request health check passes a quiet connection without a round
trip, and still replaces one the server has closed."""

import time

import psycopg
import pytest
from django.db import connection, connections

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend"),
]


def _request_starts():
    """What Django does for each request: the next cursor runs the health check again."""
    connection.health_check_done = False


def test_a_quiet_connection_passes_without_select_1_and_a_closed_one_is_replaced(monkeypatch):
    from config.postgresql.base import DatabaseWrapper, _nothing_to_read

    assert isinstance(connections["default"], DatabaseWrapper)
    assert connection.health_check_enabled
    round_trips = []
    real = DatabaseWrapper.is_usable
    monkeypatch.setattr(
        DatabaseWrapper, "is_usable", lambda self: round_trips.append(1) or real(self)
    )
    connection.ensure_connection()
    first_pid = connection.connection.info.backend_pid
    for _ in range(3):
        _request_starts()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert round_trips == []  # nothing waiting on the socket: no SELECT 1 of its own

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [first_pid])
    deadline = time.monotonic() + 5
    while _nothing_to_read(connection.connection) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server's FATAL message is on its way

    _request_starts()
    with connection.cursor() as cursor:  # the real check fails, the connection is replaced
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != first_pid
    assert round_trips == [1]
