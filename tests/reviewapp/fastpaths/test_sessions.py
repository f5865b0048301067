"""Who is asking: the session store and user backend every request goes through behave as
Django's own (reviewapp/fastpaths/sessions.py): same session data, same user, same sign-outs."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from reviewapp.fastpaths.sessions import LeanModelBackend, SessionStore
from tests.factories import ProjectFactory, ReviewerFactory, ReviewTaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_session_store_reads_what_django_wrote_and_forgets_an_expired_key():
    store = SessionStore()
    store["answer"] = 42
    store.set_expiry(300)
    store.save()
    assert SessionStore(session_key=store.session_key).load()["answer"] == 42

    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    expired = SessionStore(session_key=store.session_key)
    assert expired.load() == {}
    assert expired.session_key is None  # a fresh key is made on save, as Django's store does
    assert SessionStore(session_key="no-such-key").load() == {}


def _desk_url(project):
    return reverse("desk-next", args=[project.slug])


def _signed_in(client):
    project = ProjectFactory()
    ReviewTaskFactory(prediction__item__project=project)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    assert client.get(_desk_url(project)).status_code == 200
    return project, reviewer


def test_a_session_ended_elsewhere_signs_the_desk_out(client):
    project, _ = _signed_in(client)
    Session.objects.all().delete()  # e.g. "log out everywhere", or an admin ending sessions
    response = client.get(_desk_url(project))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_deactivated_user_is_signed_out_on_the_next_request(client):
    project, reviewer = _signed_in(client)
    get_user_model().objects.filter(pk=reviewer.pk).update(is_active=False)
    response = client.get(_desk_url(project))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_password_change_elsewhere_signs_this_session_out(client):
    project, reviewer = _signed_in(client)
    reviewer.set_password("a different long passphrase")
    reviewer.save()
    response = client.get(_desk_url(project))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_lean_backend_loads_the_same_user_as_model_backend():
    user = UserFactory(first_name="Ada", email="ada@example.org", is_staff=True)
    user.last_login = timezone.now()
    user.save()
    lean, orm = LeanModelBackend().get_user(user.pk), ModelBackend().get_user(user.pk)
    fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    assert [getattr(lean, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert lean._state.adding is False and lean._state.db == "default"
    assert LeanModelBackend().get_user(user.pk + 1000) is None


class GrantsReviewToEveryone:
    """An extra backend that grants the reviewer permission by itself (e.g. from an LDAP group)."""

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None):
        return perm == "reviewapp.review_items"


def test_lean_backend_reads_the_user_in_one_statement(django_assert_num_queries):
    user = UserFactory()
    with django_assert_num_queries(1):
        assert LeanModelBackend().get_user(user.pk).pk == user.pk
