"""Tokens: hashed, scoped, revocable, throttled; schema and docs; security headers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import Client
from rest_framework.test import APIClient

from reviewapp.api.auth import api_client_revoke, token_digest
from reviewapp.models import ApiClient
from tests.api.conftest import Api
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer hnd_not-a-real-token", "Bearer a b", "Bearer \u00e9t\u00e9"],
    ids=["missing", "no-token", "unknown", "two-parts", "non-ascii"],
)
def test_requests_without_a_valid_token_are_401(api, header):
    http = APIClient()
    if header:
        http.credentials(HTTP_AUTHORIZATION=header)
    response = http.get("/api/v1/projects/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_tokens_are_stored_hashed_and_revocation_is_immediate(api):
    row = ApiClient.objects.get()
    assert api.token not in (row.token_sha256, row.token_prefix)
    assert row.token_sha256 == token_digest(api.token)
    assert api.get("/api/v1/projects/").status_code == 200
    api_client_revoke(client=row)
    response = api.get("/api/v1/projects/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_projects_lists_only_the_tokens_projects_with_labels(api):
    ProjectFactory(slug="someone-elses")
    body = api.get("/api/v1/projects/").json()
    assert [p["slug"] for p in body] == [api.project.slug]
    assert body[0]["labels"] == ["cat", "dog", "fox"]


def test_throttling_is_per_token(api):
    api.client_row.throttle_rate = "3/min"
    api.client_row.save()
    other = Api(project=api.project, name="other")
    codes = [api.get("/api/v1/projects/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert other.get("/api/v1/projects/").status_code == 200


def test_unknown_api_paths_are_json_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_schema_is_public_and_describes_every_endpoint(api):
    assert APIClient().get("/api/v1/projects/").status_code == 401  # the data is not public
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/projects/",
        "/api/v1/projects/{slug}/items/",
        "/api/v1/projects/{slug}/items/batch/",
        "/api/v1/items/{item_id}/",
        "/api/v1/outcomes/",
        "/api/v1/projects/{slug}/export/images.zip",
        "/api/v1/webhooks/{webhook_id}/deliveries/",
    ]:
        assert path in paths


def test_docs_page_works_for_staff_and_satisfies_its_csp(db):
    staff = UserFactory(is_staff=True)
    browser = Client()
    browser.force_login(staff)
    page = browser.get("/api/v1/docs/")
    assert page.status_code == 200
    assert Client().get("/api/v1/docs/").status_code in {401, 403}
    html = page.content.decode()
    assert "<script>" not in html  # no inline script: the CSP would block it
    script = browser.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content
    assert "default-src 'self'" in page["Content-Security-Policy"]


def test_security_headers_on_pages_and_api(api):
    for response in [Client().get("/accounts/login/"), api.get("/api/v1/projects/")]:
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_browser_forms_need_a_csrf_token(db):
    reviewer = UserFactory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reviewer)
    response = browser.post("/accounts/logout/")
    assert response.status_code == 403


def test_production_settings_use_secure_cookies_and_hsts():
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    )
    env = {
        "HANDOFF_ENV": "production",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "handoff.example",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["True", "True", "True"]


def test_a_post_to_an_unknown_api_path_is_the_json_404_not_a_csrf_page(api):
    from django.test import Client

    browserless = Client(enforce_csrf_checks=True)
    response = browserless.post(
        "/api/v1/projects/no such slug/items/", HTTP_AUTHORIZATION=f"Bearer {api.token}"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_error_messages_are_the_message_without_a_detail_prefix(api):
    api.http.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    response = api.get("/api/v1/projects/")
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert message and not message.startswith("detail")
