"""The world every security test needs: two projects, one user per role, two API tokens."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from reviewapp.api.auth import api_client_create
from reviewapp.intake import services
from reviewapp.models import (
    DecidedBy,
    Decision,
    Item,
    Outcome,
    Project,
    RunState,
    RunTrigger,
    TaskStatus,
    TrainingRun,
    Verdict,
    Webhook,
    WebhookDelivery,
)
from reviewapp.rollout import versions
from tests.factories import (
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
    UserFactory,
    png_bytes,
)

# Column order of the permission matrix.
ROLES = ("anon", "reviewer_a", "reviewer_b", "rollout_admin", "superuser", "token_a", "token_b")


@dataclass
class World:
    """Project A (with a champion, an item, a run, a webhook) and project B, seen by each role."""

    project_a: Project
    project_b: Project
    item_a: Item
    item_b: Item
    run_a: TrainingRun
    webhook_a: Webhook
    headers: dict[str, dict]
    users: dict

    def client(self, role: str) -> Client:
        """A fresh client for the role (a logout by one request cannot leak into the next)."""
        client = Client(**self.headers.get(role, {}))
        if role in self.sessions:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client

    @property
    def sessions(self) -> dict[str, str]:
        return self.headers.get("_sessions", {})


@pytest.fixture
def world(champion_project, settings) -> World:
    from django.core.cache import cache

    cache.clear()  # API throttle counters and django-axes' counters start empty
    # Fast hashing: the users are created for every row of the matrix.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    project_a = champion_project
    project_b = ProjectFactory(labels=list(project_a.labels))
    item_a, _ = services.item_ingest(
        project=project_a, data=png_bytes(101), original_filename="a.png", enqueue_prediction=False
    )
    item_b, _ = services.item_ingest(
        project=project_b, data=png_bytes(102), original_filename="b.png", enqueue_prediction=False
    )
    users = {
        "reviewer_a": ReviewerFactory(username="reviewer-a"),
        "reviewer_b": ReviewerFactory(username="reviewer-b"),
        "rollout_admin": RolloutAdminFactory(username="rollout-admin"),
        "superuser": UserFactory(username="root", is_staff=True, is_superuser=True),
    }
    project_a.reviewers.add(users["reviewer_a"])
    project_b.reviewers.add(users["reviewer_b"])
    run_a = TrainingRun.objects.create(
        project=project_a, trigger=RunTrigger.MANUAL, state=RunState.FAILED, error="test run"
    )
    client_a, token_a = api_client_create(name="client-a", projects=[project_a])
    _, token_b = api_client_create(name="client-b", projects=[project_b])
    webhook_a = Webhook.objects.create(client=client_a, url="https://example.org/h", secret="s")
    _decided_item(project_a, reviewer=users["reviewer_a"], webhook=webhook_a)
    sessions = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = {
        "token_a": {"HTTP_AUTHORIZATION": f"Bearer {token_a}"},
        "token_b": {"HTTP_AUTHORIZATION": f"Bearer {token_b}"},
        "_sessions": sessions,
    }
    assert get_user_model().objects.count() == 4
    return World(project_a, project_b, item_a, item_b, run_a, webhook_a, headers, users)


def _decided_item(project: Project, *, reviewer, webhook: Webhook) -> Outcome:
    """A second item of the project with a prediction, a done task, a decision, an outcome."""
    item, _ = services.item_ingest(project=project, data=png_bytes(103), enqueue_prediction=False)
    prediction = PredictionFactory(item=item, model_version=versions.champion_of(project))
    task = ReviewTaskFactory(prediction=prediction, status=TaskStatus.DONE, claimed_by=reviewer)
    decision = Decision.objects.create(
        task=task, item=item, reviewer=reviewer, verdict=Verdict.CONFIRM, label="3"
    )
    outcome = Outcome.objects.create(
        item=item, label="3", decided_by=DecidedBy.HUMAN, decision=decision
    )
    WebhookDelivery.objects.create(webhook=webhook, outcome=outcome, payload={"id": item.pk})
    return outcome
