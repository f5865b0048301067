"""Who is asking: the session and the user that every request loads, each in one plain statement.

Django's database session store and ModelBackend fetch these rows through the ORM, whose query
building cost a quarter of the CPU of the desk's decision round trip (bench/review_cost.py), more
than the database spends on both. These classes read the same rows with fixed SQL and change
nothing else: writes, expiry, logout and the session's password hash check stay Django's.
Settings: SESSION_ENGINE = "reviewapp.fastpaths.sessions", the backend in AUTHENTICATION_BACKENDS.
https://docs.djangoproject.com/en/5.2/topics/http/sessions/#extending-database-backed-session-engines
"""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router
from django.utils import timezone

from reviewapp.fastpaths import rows as sql_rows


class SessionStore(DatabaseSessionStore):
    """The database session store, loading the session data with one fixed statement."""

    def load(self) -> dict:
        if not self.session_key:  # Django's store would query with an empty key too
            self._session_key = None
            return {}
        connection = connections[router.db_for_read(self.model)]
        table = connection.ops.quote_name(self.model._meta.db_table)
        sql = f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s"  # noqa: S608 - the name is the model's table; values are bound
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, timezone.now()])
            row = cursor.fetchone()
        if row is None:  # unknown or expired: as Django's store, forget the key
            self._session_key = None
            return {}
        return self.decode(row[0])


class LeanModelBackend(ModelBackend):
    """ModelBackend whose per-request user lookup is one fixed statement (reviewapp.sql_rows).

    Permissions, authentication and ``user_can_authenticate`` are ModelBackend's.
    """

    def get_user(self, user_id):
        user_model = get_user_model()
        using = router.db_for_read(user_model)
        with connections[using].cursor() as cursor:
            cursor.execute(_user_sql(user_model, using), [user_model._meta.pk.to_python(user_id)])
            row = cursor.fetchone()
        if row is None:
            return None
        user = sql_rows.instance(user_model, row, using=using)
        return user if self.user_can_authenticate(user) else None


@functools.cache
def _user_sql(user_model, using: str) -> str:
    quote = connections[using].ops.quote_name
    table, pk = quote(user_model._meta.db_table), quote(user_model._meta.pk.column)
    columns = sql_rows.columns(user_model, "u", using)
    return f"SELECT {columns} FROM {table} u WHERE u.{pk} = %s"  # noqa: S608 - the model's names
