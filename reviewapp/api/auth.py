"""Token authentication, project scoping and per-token throttling for the API."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from reviewapp.models import ApiClient, Project

TOKEN_PREFIX = "hnd_"  # noqa: S105 - a public marker, not a secret


def token_digest(token: str) -> str:
    """The sha256 stored in place of a token (tokens themselves are never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_generate() -> str:
    """A new random token: 'hnd_' and 43 URL-safe characters (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_issue(*, client: ApiClient) -> str:
    """Set a new token's digest on an (unsaved) client and return the token, shown once."""
    token = token_generate()
    client.token_prefix, client.token_sha256 = token[:12], token_digest(token)
    return token


def api_client_create(*, name: str, projects: list[Project]) -> tuple[ApiClient, str]:
    """Create a client and return it with its token; the token is shown once and never again."""
    client = ApiClient(name=name)
    token = token_issue(client=client)
    with transaction.atomic():
        client.save()
        client.projects.set(projects)
    return client, token


def api_client_token_rotate(*, client: ApiClient) -> str:
    """Give a client a new token (the old one stops working at once)."""
    token = token_issue(client=client)
    client.save(update_fields=["token_prefix", "token_sha256"])
    return token


def api_client_revoke(*, client: ApiClient) -> None:
    """Revoke a client's token; a revoked token is refused from the next request on."""
    ApiClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer hnd_…`: looks the token's sha256 up; revoked tokens are refused."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode("latin-1").lower() not in {"bearer", "token"}:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token contains invalid characters.")
        client = ApiClient.objects.filter(token_sha256=token_digest(token)).first()
        if client is None:
            raise exceptions.AuthenticationFailed("Unknown token.")
        if not client.is_active:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        now = timezone.now()
        if client.last_used_at is None or (now - client.last_used_at).total_seconds() > 60:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        return client, client

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the token scheme in the OpenAPI schema."""

    target_class = "reviewapp.api.auth.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API client token."}


class IsApiClient(permissions.BasePermission):
    """Only requests authenticated with an API token."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiClient)


def client_projects(client: ApiClient):
    """The projects a client may read and write."""
    return client.projects.all()


def project_for_client(*, client: ApiClient, slug: str) -> Project:
    """The project by slug if the client is scoped to it; 404 for both unknown and foreign."""
    project = client.projects.filter(slug=slug).first()
    if project is None:
        # One answer for 'does not exist' and 'not yours': slugs of other tenants stay private.
        raise exceptions.NotFound(f"No project '{slug}' for this token.")
    return project


class ApiClientRateThrottle(throttling.SimpleRateThrottle):
    """Requests per token (the client's own rate, else HANDOFF_API_THROTTLE_RATE)."""

    scope = "api_client"

    def get_rate(self) -> str:
        return settings.HANDOFF_API_THROTTLE_RATE

    def allow_request(self, request, view) -> bool:
        client = request.auth if isinstance(request.auth, ApiClient) else None
        if client is not None and client.throttle_rate:
            self.rate = client.throttle_rate
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ApiClient):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
