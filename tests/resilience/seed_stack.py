"""Seed a stack database (run as a subprocess with the stack's DATABASE_URL).

    python -m tests.resilience.seed_stack '{"artifact": {...}, "reviewers": 2, "stage": "shadow"}'

Prints one JSON line: the project slug, user names, the password and an API token.
"""

from __future__ import annotations

import json
import os
import sys

from reviewapp.rollout import versions

PASSWORD = "resilience-password-123"  # noqa: S105 - throwaway test users


def seed(spec: dict) -> dict:
    from django.contrib.auth import get_user_model

    from reviewapp.accounts.services import groups_ensure
    from reviewapp.api.auth import api_client_create
    from reviewapp.models import Alias, Project

    reviewers_group, admins_group = groups_ensure()
    artifact = spec["artifact"]
    project = Project.objects.create(
        slug="res",
        name="Resilience",
        labels=artifact["metadata"]["labels"],
        stage=spec.get("stage", "shadow"),
        traffic_share=spec.get("traffic_share", 0.0),
        confidence_threshold=spec.get("confidence_threshold", 0.95),
        audit_rate=0.0,
    )
    version = versions.model_version_register(
        project=project,
        artifact_path=artifact["path"],
        sha256=artifact["sha256"],
        metadata=artifact["metadata"],
    )
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=version, reason="t")
    users = get_user_model().objects
    admin = users.create_user("res-admin", password=PASSWORD)
    admin.groups.add(admins_group)
    reviewers = []
    for index in range(spec.get("reviewers", 1)):
        user = users.create_user(f"res-reviewer-{index}", password=PASSWORD)
        user.groups.add(reviewers_group)
        reviewers.append(user)
    project.reviewers.add(admin, *reviewers)
    _, token = api_client_create(name="res-camera", projects=[project])
    return {
        "slug": project.slug,
        "admin": admin.username,
        "reviewers": [u.username for u in reviewers],
        "password": PASSWORD,
        "token": token,
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    print(json.dumps(seed(json.loads(sys.argv[1]))))
