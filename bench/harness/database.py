"""A benchmark's own database: recreated and migrated, or a throwaway test database; and this
process's Django set up on it."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator

import django
import psycopg
from django.db import connection
from django.test.utils import setup_test_environment

from bench.harness import ROOT

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def database_arguments(parser: argparse.ArgumentParser, *, name: str | None = None) -> None:
    """--admin-url (the server's maintenance database) and, with a default `name`, --database."""
    parser.add_argument("--admin-url", default=ADMIN_URL)
    if name is not None:
        parser.add_argument("--database", default=name, help="recreated for the run")


def database_url(*, admin_url: str, name: str) -> str:
    """The URL of database `name` on the server of `admin_url`."""
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def database_recreate(*, admin_url: str, name: str) -> str:
    """Drop and create a PostgreSQL database (a benchmark's own); returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url=admin_url, name=name)


def migrate(url: str) -> None:
    """`manage.py migrate` on the database at `url`, in a child process."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, check=True, timeout=600,
    )  # fmt: skip


def database_prepare(*, admin_url: str, name: str) -> str:
    """A fresh, migrated database of the benchmark's own; returns its URL."""
    url = database_recreate(admin_url=admin_url, name=name)
    migrate(url)
    return url


def django_setup(url: str, **env: str) -> None:
    """Point this process at the database `url` (and `env`), then set Django up."""
    os.environ.update(DATABASE_URL=url, **env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def analyze() -> None:
    """Fresh planner statistics, as autovacuum would keep them."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


@contextlib.contextmanager
def throwaway_database(url: str, **env: str) -> Iterator[None]:
    """Django set up on a throwaway test database next to `url`'s, dropped afterwards."""
    django_setup(url, **env)
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
