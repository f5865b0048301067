"""Seed a stack's database (run as a child process with the stack's DATABASE_URL).

    python -m bench.harness.seed_stack '{"artifact": {...}, "reviewers": 2, "stage": "shadow"}'

Prints one JSON line: the project slug, user names, the password and an API token.
"""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace


def seed(spec: dict) -> dict:
    """A project with the artifact as champion, an admin, reviewers and an API client."""
    from bench.harness import seeding  # the models: only once Django is set up
    from reviewapp.accounts.services import groups_ensure
    from reviewapp.api.auth import api_client_create

    _, admins_group = groups_ensure()
    project, _ = seeding.project_with_champion(
        slug="res",
        artifact=SimpleNamespace(**spec["artifact"]),
        stage=spec.get("stage", "shadow"),
        traffic_share=spec.get("traffic_share", 0.0),
        confidence_threshold=spec.get("confidence_threshold", 0.95),
        audit_rate=0.0,
    )
    admin = seeding.user_create("res-admin", admins_group)
    reviewers = seeding.reviewers_create(
        [f"res-reviewer-{index}" for index in range(spec.get("reviewers", 1))]
    )
    project.reviewers.add(admin, *reviewers)
    _, token = api_client_create(name="res-camera", projects=[project])
    return {
        "slug": project.slug,
        "admin": admin.username,
        "reviewers": [u.username for u in reviewers],
        "password": seeding.PASSWORD,
        "token": token,
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    print(json.dumps(seed(json.loads(sys.argv[1]))))
