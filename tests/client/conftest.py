"""The Python client (clients/python) against the real app on pytest-django's live server.

The client is imported from the source tree, so the suite needs no install step.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

from handoff_client import Client, RetryPolicy  # noqa: E402

from reviewapp.api.auth import api_client_create  # noqa: E402
from reviewapp.models import ApiClient, Project  # noqa: E402
from tests.factories import ProjectFactory  # noqa: E402


@dataclass
class Handoff:
    """A project, a token scoped to it, and a client using that token on the live server."""

    project: Project
    api_client: ApiClient
    token: str
    client: Client
    url: str


@pytest.fixture(autouse=True)
def _fresh_throttle_history():
    """Throttle counters live in the cache; ids repeat between tests, so start empty."""
    cache.clear()
    yield


@pytest.fixture
def handoff(live_server, transactional_db):
    project = ProjectFactory(labels=["cat", "dog", "NA"])
    row, token = api_client_create(name="pipeline", projects=[project])
    retry = RetryPolicy(attempts=2, backoff=0.05)
    with Client(live_server.url, token, retry=retry, timeout=30) as client:
        yield Handoff(
            project=project, api_client=row, token=token, client=client, url=live_server.url
        )
