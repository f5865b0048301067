"""Model instances from the rows of plain SQL statements, without ``RawQuerySet``.

``RawQuerySet`` works out on every query which column is which field (the cursor's description,
the model's init order, the converters). Here a statement selects the model's concrete columns
in field order (``columns``), any extra columns after them, and ``instance`` builds the model
from the row with the converters the ORM applies to those fields. Used by the access check
(reviewapp.fastpaths.access) and the claim (reviewapp.review.services), twice per decision.

Measured (docs/benchmarks.md, "Fast paths: what each one saves"): one Project read by primary
key costs ~245 us of Python CPU through ``RawQuerySet`` and ~105-120 us here, so ~0.25 ms per
decision, ~4-5% of the round trip's CPU; kept because both statements above need rows as models.

    .venv/bin/python bench/row_instances.py --database-url postgres://postgres@127.0.0.1:5432/handoff_bench_review_cost
"""

from __future__ import annotations

import functools

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model


@functools.cache
def _columns(model: type[Model], table_alias: str, using: str) -> str:
    quote = connections[using].ops.quote_name
    return ", ".join(f"{table_alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def columns(model: type[Model], table_alias: str, using: str = DEFAULT_DB_ALIAS) -> str:
    """``alias."col", ...`` for the model's concrete fields, in the order ``instance`` reads."""
    return _columns(model, table_alias, using)


def _converters(model: type[Model], db) -> tuple:
    """(index, converters, column) per field whose database value needs converting, as the ORM's
    compiler finds them; kept on the connection, whose operations the converters are bound to."""
    cache = db.__dict__.setdefault("_handoff_row_converters", {})
    found = cache.get(model)
    if found is None:
        found = []
        for index, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(model._meta.db_table)
            functions = db.ops.get_db_converters(column)
            functions += column.get_db_converters(db)
            if functions:
                found.append((index, tuple(functions), column))
        found = cache[model] = tuple(found)
    return found


def instance(model: type[Model], row, using: str = DEFAULT_DB_ALIAS) -> Model:
    """The model instance from a row whose first columns are ``columns(model, ...)``; columns after
    them are the caller's to read."""
    db = connections[using]
    values = list(row[: len(model._meta.concrete_fields)])
    for index, functions, column in _converters(model, db):
        value = values[index]
        for function in functions:
            value = function(value, column, db)
        values[index] = value
    return model.from_db(db.alias, None, values)
