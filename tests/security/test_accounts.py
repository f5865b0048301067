"""Sign-in: throttled by django-axes, strong passwords, sessions that expire; API tokens."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviewapp.models import ApiClient
from tests.factories import ReviewerFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # tests.factories.UserFactory's password


@pytest.fixture
def reviewer(settings):
    from django.core.cache import cache

    cache.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return ReviewerFactory(username="ada")


def _sign_in(client: Client, username: str, password: str, *, url: str = "/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def test_repeated_failures_lock_the_account_out_with_a_clear_message(reviewer):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, "ada", "wrong").status_code == 200  # the form, with its error
    locked = _sign_in(client, "ada", "wrong")
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and "ada" in text
    assert f"blocked for {settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in text
    # Even the right password is refused now, and no session is opened.
    assert _sign_in(client, "ada", PASSWORD).status_code == 429
    assert client.get(reverse("home")).status_code == 302


def test_the_admin_login_is_throttled_too(reviewer):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "ada", "wrong", url="/admin/login/")
    assert _sign_in(client, "ada", PASSWORD, url="/admin/login/").status_code == 429


def test_lockout_is_per_user_and_address_and_ends_after_the_cool_off(reviewer):
    other = ReviewerFactory(username="grace")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "ada", "wrong")
    assert _sign_in(client, "ada", PASSWORD).status_code == 429
    # Another user at the same address, and the same user elsewhere, still sign in.
    assert _sign_in(Client(), other.username, PASSWORD).status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.9.8.7")
    assert _sign_in(elsewhere, "ada", PASSWORD).status_code == 302
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert _sign_in(client, "ada", PASSWORD).status_code == 302


def test_a_success_resets_the_failure_count(reviewer):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "ada", "wrong")
    assert _sign_in(client, "ada", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "ada", "wrong")
    assert _sign_in(client, "ada", PASSWORD).status_code == 302


def test_api_tokens_still_work_from_a_locked_out_address(world):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(Client(), "reviewer-a", "wrong")
    assert _sign_in(Client(), "reviewer-a", PASSWORD).status_code == 429
    assert world.client("token_a").get("/api/v1/projects/").status_code == 200
    # A wrong token is a 401 from the API, not a sign-in failure that could lock a person out.
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        bad = Client(HTTP_AUTHORIZATION="Bearer hnd_nope").get("/api/v1/projects/")
        assert bad.status_code == 401
    assert AccessAttempt.objects.filter(username="").count() == 0


@pytest.mark.parametrize("weak", ["password", "12345678", "ada-ada", "short"])
def test_weak_passwords_are_refused(reviewer, weak):
    with pytest.raises(ValidationError):
        validate_password(weak, user=reviewer)
    validate_password("a long and uncommon passphrase 7", user=reviewer)


def test_sessions_expire(reviewer):
    client = Client()
    assert _sign_in(client, "ada", PASSWORD).status_code == 302
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert cookie["httponly"]
    assert client.get(reverse("home")).status_code == 200
    Session.objects.filter(session_key=cookie.value).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(reverse("home")).status_code == 302


def test_api_tokens_are_stored_hashed_shown_once_and_revocable(world):
    admin = world.client("superuser")
    response = admin.post(
        reverse("admin:reviewapp_apiclient_add"),
        {"name": "camera", "projects": [world.project_a.pk], "throttle_rate": ""},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"] if "never shown again" in str(m)]
    token = shown[0].rsplit(": ", 1)[1]
    row = ApiClient.objects.get(name="camera")
    # Stored hashed: no column holds the token, one holds its sha256.
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(getattr(row, f.attname)) for f in ApiClient._meta.fields)
    # Shown once: neither the change page nor the list shows it again.
    change = admin.get(reverse("admin:reviewapp_apiclient_change", args=[row.pk]))
    listing = admin.get(reverse("admin:reviewapp_apiclient_changelist"))
    assert token not in change.content.decode() and token not in listing.content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/projects/").status_code == 200
    # Revocable: the admin action, and the very next request is refused.
    admin.post(
        reverse("admin:reviewapp_apiclient_changelist"),
        {"action": "revoke", "_selected_action": [row.pk]},
    )
    refused = api.get("/api/v1/projects/")
    assert refused.status_code == 401
    assert "revoked" in refused.content.decode()
