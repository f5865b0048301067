"""Insert many new rows with PostgreSQL's COPY instead of a bulk INSERT (issue 17).

``bulk_create`` on PostgreSQL sends every column as an array parameter (``INSERT … SELECT *
FROM UNNEST(…)``); psycopg builds those arrays value by value in Python, and the server then
plans the statement. For the prediction worker's hundreds of rows per batch (predictions and
their drift samples, each with JSON columns) that was most of the time of a bulk write. COPY
streams the rows in PostgreSQL's text format (psycopg formats a row in C) and the server parses
them without planning anything.

The primary keys are taken first from the table's identity sequence, in one statement, so the
caller gets its objects back with ``pk`` set, as from ``bulk_create``. A unique violation raises
``django.db.IntegrityError`` like ``bulk_create`` (run it in a savepoint when you want to fall
back). Other databases use ``bulk_create``.

Measured in bench/predict_pipeline.py (docs/benchmarks.md, "Prediction pipeline").
https://www.postgresql.org/docs/current/sql-copy.html, https://www.psycopg.org/psycopg3/docs/basic/copy.html
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection
from django.db.models import Field, JSONField, Model
from django.utils import timezone

# Below this many rows a plain bulk INSERT costs about the same, and its code path is older.
MIN_ROWS = 8


def _column_values(field: Field, objs: list[Model]) -> list:
    """One column's values as COPY takes them: JSON as its text, the rest as the ORM saves it."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        now = timezone.now()  # one clock reading per batch, like bulk_create's per-row pre_save
        for obj in objs:
            setattr(obj, field.attname, now)
    raw = [getattr(obj, field.attname) for obj in objs]
    if isinstance(field, JSONField):
        return [None if v is None else json.dumps(v, cls=field.encoder) for v in raw]
    return [field.get_db_prep_save(v, connection=connection) for v in raw]


def copy_insert(objs: Sequence[Model]) -> list[Model]:
    """Insert unsaved instances of one model; returns them with their primary keys set."""
    objs = list(objs)
    if not objs:
        return objs
    model = type(objs[0])
    if connection.vendor != "postgresql" or len(objs) < MIN_ROWS:
        return model.objects.bulk_create(objs)
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="copy_insert")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
        columns = ", ".join(quote(f.column) for f in [meta.pk, *fields])
        values = [_column_values(f, objs) for f in fields]
        rows = [[obj.pk, *row] for obj, row in zip(objs, zip(*values, strict=True), strict=True)]
        with connection.wrap_database_errors:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias
    return objs
