"""reviewapp.fastpaths.rows: model instances from plain SQL rows match what the ORM loads
and what RawQuerySet (the stock path for plain SQL) builds, on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from reviewapp.fastpaths import rows as sql_rows
from reviewapp.models import Project, ReviewTask, Stage, TaskStatus
from tests.factories import ProjectFactory, ReviewerFactory, ReviewTaskFactory

pytestmark = pytest.mark.django_db


def _fields(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def _sql(model, extra="1 + 1"):
    return (
        f"SELECT {sql_rows.columns(model, 'x')}, {extra} FROM {model._meta.db_table} x "  # noqa: S608
        "WHERE x.id = %s"
    )


def _row(model, pk):
    with connection.cursor() as cursor:
        cursor.execute(_sql(model), [pk])
        return cursor.fetchone()


def test_a_project_from_a_row_equals_the_orm_one_field_by_field():
    # JSON (labels), booleans, decimals/floats and datetimes all need the ORM's converters on
    # one backend or the other.
    project = ProjectFactory(
        stage=Stage.SUPERVISED, kill_switch=True, labels=["cat", "dog", "ünïcode"]
    )
    loaded = Project.objects.get(pk=project.pk)
    row = _row(Project, project.pk)
    built = sql_rows.instance(Project, row)
    assert _fields(built) == _fields(loaded)
    assert _fields(built) == _fields(next(iter(Project.objects.raw(_sql(Project), [project.pk]))))
    assert built.labels == ["cat", "dog", "ünïcode"] and built.kill_switch is True
    assert built._state.adding is False and built._state.db == "default"
    assert row[-1] == 2  # the caller's own columns follow the model's


def test_a_claimed_task_from_a_row_equals_the_orm_one_field_by_field():
    task = ReviewTaskFactory(
        status=TaskStatus.CLAIMED,
        claimed_by=ReviewerFactory(),
        lease_expires_at=timezone.now() + timedelta(minutes=5),
        audit_probability=0.25,
    )
    built = sql_rows.instance(ReviewTask, _row(ReviewTask, task.pk))
    loaded = ReviewTask.objects.get(pk=task.pk)
    assert _fields(built) == _fields(loaded)
    assert _fields(built) == _fields(
        next(iter(ReviewTask.objects.raw(_sql(ReviewTask), [task.pk])))
    )
    assert built.lease_expires_at.tzinfo is not None and built.audit_probability == 0.25


def test_columns_follow_the_models_field_order():
    names = [part.split(".")[1].strip('"') for part in sql_rows.columns(Project, "p").split(", ")]
    assert names == [f.column for f in Project._meta.concrete_fields]
