"""A desk session ends when Django says it has: ended elsewhere, user deactivated, password
changed (Django's database sessions and ModelBackend; guards any future faster read of them)."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.urls import reverse

from tests.factories import ProjectFactory, ReviewerFactory, ReviewTaskFactory

pytestmark = pytest.mark.django_db


def _signed_in(client):
    project = ProjectFactory()
    ReviewTaskFactory(prediction__item__project=project)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    desk = reverse("desk-next", args=[project.slug])
    assert client.get(desk).status_code == 200
    return desk, reviewer


def _signed_out(response) -> bool:
    return response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_session_ended_elsewhere_signs_the_desk_out(client):
    desk, _ = _signed_in(client)
    Session.objects.all().delete()  # e.g. "log out everywhere", or an admin ending sessions
    assert _signed_out(client.get(desk))


def test_a_deactivated_user_is_signed_out_on_the_next_request(client):
    desk, reviewer = _signed_in(client)
    get_user_model().objects.filter(pk=reviewer.pk).update(is_active=False)
    assert _signed_out(client.get(desk))


def test_a_password_change_elsewhere_signs_this_session_out(client):
    desk, reviewer = _signed_in(client)
    reviewer.set_password("a different long passphrase")
    reviewer.save()
    assert _signed_out(client.get(desk))
