"""Lists show each principal only its own projects: nothing of project A leaks to B's people."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_reviewer_of_b_sees_nothing_of_project_a(world):
    reviewer_b = world.client("reviewer_b")
    home = reviewer_b.get(reverse("home")).content.decode()
    assert world.project_b.name in home and world.project_a.name not in home
    assert world.project_a.slug not in home
    own = world.client("reviewer_a").get(reverse("home")).content.decode()
    assert world.project_a.name in own and world.project_b.name not in own


def test_token_of_b_lists_nothing_of_project_a(world):
    token_b, token_a = world.client("token_b"), world.client("token_a")
    slug_a, slug_b = f'"{world.project_a.slug}"', f'"{world.project_b.slug}"'
    projects = token_b.get("/api/v1/projects/").content.decode()
    assert slug_b in projects and slug_a not in projects
    # Project A has one outcome: A's feed shows it, B's feed does not.
    assert slug_a in token_a.get("/api/v1/outcomes/").content.decode()
    assert slug_a not in token_b.get("/api/v1/outcomes/").content.decode()
    assert token_b.get(f"/api/v1/outcomes/?project={world.project_a.slug}").status_code == 404
    hooks_a = token_a.get("/api/v1/webhooks/").content.decode()
    hooks_b = token_b.get("/api/v1/webhooks/").content.decode()
    assert world.webhook_a.url in hooks_a and world.webhook_a.url not in hooks_b
