"""Every URL the project serves × every role: the expected HTTP status, pinned.

URL patterns are enumerated from the resolver, so a URL added anywhere without a row here makes
`test_every_url_pattern_has_a_row` fail and name the pattern. Adding a row is one line in ROWS
(or, for a model registered in the Django admin, one line in ADMIN_MODELS).

Every URL is filled in with project A's objects (its slug, item, training run, webhook), so the
columns read: anonymous, a reviewer of A, a reviewer of B (must never get A's data), a rollout
admin (every project, not staff), a superuser, an API token scoped to A, a token scoped to B.
Each request runs inside a rolled-back savepoint, so a POST by one role cannot change what the
next role sees. Media has no URL pattern of its own (MEDIA_URL is not routed): images are only
`items/<id>/image/` here, and test_media_access.py checks the media folder answers nobody.
"""

from __future__ import annotations

import json
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.conftest import ROLES

pytestmark = pytest.mark.django_db

# Columns: (anon, reviewer_a, reviewer_b, rollout_admin, superuser, token_a, token_b)
PAGE = (302, 200, 403, 200, 200, 302, 302)  # a page of project A
ADMIN_PAGE = (302, 403, 403, 200, 200, 302, 302)  # rollout admins only
STAFF = (302, 302, 302, 302, 200, 302, 302)  # the Django admin: staff only
API = (401, 401, 401, 401, 401, 200, 404)  # token-only, scoped to project A
PUBLIC = (200, 200, 200, 200, 200, 200, 200)  # e.g. sign-in, health checks


def _s(anon, rev_a, rev_b, rollout, root, tok_a, tok_b):
    return (anon, rev_a, rev_b, rollout, root, tok_a, tok_b)


# "METHOD pattern": expected status per role (columns above). POST bodies are empty: the row
# pins who gets past the permission check, not what a valid form does.
ROWS: dict[str, tuple[int, ...]] = {
    # Sign-in and the project pages.
    "GET accounts/login/": PUBLIC,
    "POST accounts/login/": _s(200, 200, 200, 200, 200, 200, 200),
    "POST accounts/logout/": _s(302, 302, 302, 302, 302, 302, 302),
    "GET ": _s(302, 200, 200, 200, 200, 302, 302),  # home lists only the user's own projects
    "GET projects/<slug:slug>/": PAGE,
    "POST projects/<slug:slug>/upload/": _s(302, 403, 403, 302, 302, 302, 302),
    "GET items/<int:item_id>/image/": PAGE,
    "GET items/<int:item_id>/model-view.png": PAGE,
    # A clip's sampled frames: item A is a still image, so it has none (404 past the access check).
    "GET items/<int:item_id>/frames/<int:index>.png": _s(302, 404, 403, 404, 404, 302, 302),
    # The model version page: reviewers of the project may look, rollout admins may export.
    "GET projects/<slug:slug>/versions/<int:number>/": PAGE,
    "POST projects/<slug:slug>/versions/<int:number>/export/": _s(
        302, 403, 403, 302, 302, 302, 302
    ),
    "POST items/<int:item_id>/relabel/": _s(302, 403, 403, 302, 302, 302, 302),
    # The reviewer desk.
    "GET projects/<slug:slug>/review/": PAGE,
    "GET projects/<slug:slug>/review/next.json": PAGE,
    "GET projects/<slug:slug>/review/stats.json": PAGE,
    "POST projects/<slug:slug>/review/decide/": _s(302, 302, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/review/undo/": _s(302, 302, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/review/decide.json": _s(302, 409, 403, 409, 409, 302, 302),
    "POST projects/<slug:slug>/review/undo.json": _s(302, 200, 403, 409, 409, 302, 302),  # own
    "POST projects/<slug:slug>/review/renew.json": _s(302, 200, 403, 200, 200, 302, 302),
    "POST projects/<slug:slug>/review/alerts/<int:alert_id>/acknowledge/": _s(
        302, 302, 403, 302, 302, 302, 302
    ),
    # Training: reviewers of the project may watch, only rollout admins may act.
    "GET projects/<slug:slug>/training/": PAGE,
    "POST projects/<slug:slug>/training/start/": _s(302, 403, 403, 302, 302, 302, 302),
    "GET training/runs/<int:run_id>/": PAGE,
    "GET training/runs/<int:run_id>/status.json": PAGE,
    "GET training/runs/<int:run_id>/confusion.png": _s(302, 404, 403, 404, 404, 302, 302),
    "POST training/runs/<int:run_id>/cancel/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST training/runs/<int:run_id>/retry/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST training/runs/<int:run_id>/challenger/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST training/runs/<int:run_id>/promote/": _s(302, 403, 403, 302, 302, 302, 302),
    # Rollout: rollout admins only.
    "GET projects/<slug:slug>/rollout/": ADMIN_PAGE,
    "GET projects/<slug:slug>/rollout/challenger/": ADMIN_PAGE,
    "POST projects/<slug:slug>/rollout/promote/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/rollout/kill-switch/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/rollout/traffic/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/rollout/policy/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/rollout/challenger/set/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/rollout/challenger/ab/": _s(302, 403, 403, 302, 302, 302, 302),
    "POST projects/<slug:slug>/rollout/challenger/promote/": _s(302, 403, 403, 302, 302, 302, 302),
    # Reviewer quality and gold items (issue 20): rollout admins only; the empty CSV post is a
    # 400 (no file), the promotion of a never adjudicated item a refusal message and a redirect.
    "GET projects/<slug:slug>/quality/": ADMIN_PAGE,
    "GET projects/<slug:slug>/quality/gold/import/": ADMIN_PAGE,
    "POST projects/<slug:slug>/quality/gold/import/": _s(302, 403, 403, 400, 400, 302, 302),
    "POST projects/<slug:slug>/quality/gold/promote/<int:item_id>/": _s(
        302, 403, 403, 302, 302, 302, 302
    ),
    # REST API: tokens only; a token of project B gets 404 for A's data (existence stays private).
    "GET api/v1/schema/": PUBLIC,  # holds no data; clients generate code from it
    "GET api/v1/docs/": _s(401, 403, 403, 403, 200, 200, 200),  # tokens and staff
    "GET api/v1/projects/": _s(401, 401, 401, 401, 401, 200, 200),  # each token: its own
    "POST api/v1/projects/<slug:slug>/items/": _s(401, 401, 401, 401, 401, 400, 404),
    # JSON only: the matrix's form-encoded empty body is a 415 once the token is accepted.
    "POST api/v1/projects/<slug:slug>/edge-decisions/": _s(401, 401, 401, 401, 401, 415, 404),
    "POST api/v1/projects/<slug:slug>/items/batch/": _s(401, 401, 401, 401, 401, 415, 404),
    "GET api/v1/projects/<slug:slug>/export/manifest.csv": API,
    "GET api/v1/projects/<slug:slug>/export/manifest.json": API,
    "GET api/v1/projects/<slug:slug>/export/images.zip": API,
    "GET api/v1/items/<int:item_id>/": API,
    "GET api/v1/outcomes/": _s(401, 401, 401, 401, 401, 200, 200),  # each token: its own
    "GET api/v1/webhooks/": _s(401, 401, 401, 401, 401, 200, 200),  # each token: its own
    "GET api/v1/webhooks/<int:webhook_id>/deliveries/": API,
    "GET api/v1/^.*$": _s(404, 404, 404, 404, 404, 404, 404),
    # Django admin, site-wide pages (models: ADMIN_MODELS).
    "GET admin/": STAFF,
    "GET admin/login/": _s(200, 200, 200, 200, 302, 200, 200),
    "POST admin/logout/": _s(302, 302, 302, 302, 302, 302, 302),
    "GET admin/password_change/": STAFF,
    "GET admin/password_change/done/": STAFF,
    "GET admin/autocomplete/": _s(302, 302, 302, 302, 403, 302, 302),
    "GET admin/jsi18n/": STAFF,
    "GET admin/r/<path:content_type_id>/<path:object_id>/": _s(302, 302, 302, 302, 404, 302, 302),
    "GET admin/^(?P<app_label>…)/$": STAFF,
    "GET admin/(?P<url>.*)$": _s(302, 302, 302, 302, 404, 302, 302),
    "GET admin/auth/user/<id>/password/": STAFF,
    # Operations: probes are open (they say only ok/fail); metrics need the metrics bearer token
    # (not an API token: an API token's header is refused) or a staff session.
    "GET healthz": PUBLIC,
    "GET readyz": PUBLIC,
    "GET metrics": _s(401, 403, 403, 403, 200, 403, 403),
    # Admin actions (POSTed to a changelist).
    "POST admin/reviewapp/apiclient/ action=revoke": _s(302, 302, 302, 302, 302, 302, 302),
    "POST admin/reviewapp/webhookdelivery/ action=redeliver": _s(302, 302, 302, 302, 302, 302, 302),
}

# Django admin: one line per registered model -> the superuser's status on its changelist, add,
# history, delete and change pages (object pages use the model's first row; "<pk>/" redirects to
# the change page). Everybody else is sent to the admin's login (302): no role but staff gets in.
ADMIN_MODELS: dict[str, tuple[int, int, int, int, int]] = {
    "auth.group": (200, 200, 200, 200, 200),
    "auth.user": (200, 200, 200, 200, 200),
    "axes.accessattempt": (200, 403, 302, 302, 302),  # 302: no row in the test world
    "axes.accessfailurelog": (200, 403, 302, 302, 302),
    "axes.accesslog": (200, 403, 200, 200, 200),
    "django_celery_beat.clockedschedule": (200, 200, 302, 302, 302),
    "django_celery_beat.crontabschedule": (200, 200, 302, 302, 302),
    "django_celery_beat.intervalschedule": (200, 200, 302, 302, 302),
    "django_celery_beat.periodictask": (200, 200, 302, 302, 302),
    "django_celery_beat.solarschedule": (200, 200, 302, 302, 302),
    # History (read-only): never added or deleted, even by a superuser.
    "reviewapp.aliasassignment": (200, 403, 200, 403, 200),
    "reviewapp.decision": (200, 403, 200, 403, 200),
    "reviewapp.modelversion": (200, 403, 200, 403, 200),
    "reviewapp.outcome": (200, 403, 200, 403, 200),
    "reviewapp.prediction": (200, 403, 200, 403, 200),
    "reviewapp.rolloutevent": (200, 403, 200, 403, 200),
    "reviewapp.trainingrun": (200, 403, 200, 403, 200),
    "reviewapp.item": (200, 403, 200, 200, 200),  # items come only through ingestion
    "reviewapp.webhookdelivery": (200, 403, 200, 200, 200),
    "reviewapp.driftalarm": (200, 403, 302, 403, 302),  # alarms come only from drift checks
    "reviewapp.driftcheck": (200, 403, 302, 403, 302),
    "reviewapp.apiclient": (200, 200, 200, 200, 200),
    "reviewapp.project": (200, 200, 200, 200, 200),
    "reviewapp.reviewtask": (200, 200, 200, 200, 200),
    "reviewapp.webhook": (200, 200, 200, 200, 200),
}

# Patterns that are regular expressions need an example path (no converter to fill in).
EXAMPLE_PATHS = {
    "admin/^(?P<app_label>…)/$": "/admin/reviewapp/",
    "admin/(?P<url>.*)$": "/admin/no-such-page/",
    "api/v1/^.*$": "/api/v1/no-such-endpoint/",
}


def _pattern_keys(patterns=None, prefix: str = ""):
    """Every URL pattern of the project as one string (the route of each level, joined)."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _pattern_keys(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            # The app_list regex names every app with admin models: keep the key stable.
            yield re.sub(r"\(\?P<app_label>[^)]*\)", "(?P<app_label>…)", route)


def _admin_rows() -> dict[str, tuple[int, ...]]:
    rows = {}
    for model_label, statuses in ADMIN_MODELS.items():
        base = "admin/" + model_label.replace(".", "/") + "/"
        suffixes = ("", "add/", "<path:object_id>/history/", "<path:object_id>/delete/")
        suffixes += ("<path:object_id>/change/",)
        for suffix, status in zip(suffixes, statuses, strict=True):
            rows[f"GET {base}{suffix}"] = _s(302, 302, 302, 302, status, 302, 302)
        rows[f"GET {base}<path:object_id>/"] = _s(302, 302, 302, 302, 302, 302, 302)
    return rows


def _all_rows() -> dict[str, tuple[int, ...]]:
    return {**ROWS, **_admin_rows()}


def _admin_object_id(route: str) -> str:
    """The pk of an existing object of the admin model in the route ("0" when there is none)."""
    app_label, model_name = route.split("/")[1:3]
    obj = apps.get_model(app_label, model_name)._default_manager.order_by("pk").first()
    return str(obj.pk) if obj is not None else "0"


def _alert_a(world):
    from reviewapp.models import Alert

    alert, _ = Alert.objects.get_or_create(
        item=world.item_a,
        defaults={"project": world.project_a, "label": "x", "reason": "top1", "probability": 1},
    )
    return alert


def _path_for(route: str, world) -> str:
    if route in EXAMPLE_PATHS:
        return EXAMPLE_PATHS[route]
    values = {
        "slug": world.project_a.slug,
        "item_id": world.item_a.pk,
        "run_id": world.run_a.pk,
        "webhook_id": world.webhook_a.pk,
        "number": world.project_a.model_versions.order_by("number").first().number,
        "index": 0,
        "id": world.users["reviewer_a"].pk,
        "content_type_id": ContentType.objects.get_for_model(world.project_a).pk,
    }
    if "<int:alert_id>" in route:  # an open alert on item A
        values["alert_id"] = _alert_a(world).pk
    if "<path:object_id>" in route and route.startswith("admin/r/"):
        values["object_id"] = world.project_a.pk
    elif "<path:object_id>" in route:
        values["object_id"] = _admin_object_id(route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)
    return "/" + path


def _request(client, method: str, path: str, data: dict):
    """One request in a savepoint that is rolled back afterwards."""
    with transaction.atomic():
        if method == "GET":
            response = client.get(path)
        elif path.endswith(".json"):
            response = client.post(path, json.dumps(data), content_type="application/json")
        else:
            response = client.post(path, data)
        transaction.set_rollback(True)
    return response


def _form_data(route: str, extra: str) -> dict:
    """'action=NAME' on an admin changelist: run the action on the model's first row."""
    if not extra:
        return {}
    name, value = extra.split("=", 1)
    app_label, model_name = route.split("/")[1:3]
    pk = apps.get_model(app_label, model_name)._default_manager.order_by("pk").first().pk
    return {name: value, "_selected_action": [pk]}


@pytest.mark.parametrize("key", sorted(_all_rows()))
def test_status_of_every_role(world, key):
    method, route, *extra = key.split(" ", 2)
    path = _path_for(route, world)
    data = _form_data(route, extra[0] if extra else "")
    expected = _all_rows()[key]
    got = tuple(_request(world.client(role), method, path, data).status_code for role in ROLES)
    pairs = zip(ROLES, expected, got, strict=True)
    wrong = [f"{role}: expected {e}, got {g}" for role, e, g in pairs if e != g]
    assert not wrong, f"{method} {path} ({key}):\n  " + "\n  ".join(wrong) + f"\n  got {got}"


def test_every_url_pattern_has_a_row():
    covered = {key.split(" ", 2)[1] for key in _all_rows()}
    missing = sorted(set(_pattern_keys()) - covered)
    hints = []
    for route in missing:
        if route.startswith("admin/") and route.count("/") >= 3:
            hint = f"{'.'.join(route.split('/')[1:3])!r}: add the model to ADMIN_MODELS"
        else:
            hint = f'{route!r}: add a row to ROWS, e.g. "GET {route}": PAGE,'
        hints += [hint] if hint not in hints else []
    assert not hints, (
        "URL pattern(s) without a row in tests/security/test_permission_matrix.py "
        "(say who may reach them):\n  " + "\n  ".join(hints)
    )


def test_no_row_is_left_for_a_url_that_is_gone():
    patterns = set(_pattern_keys())
    stale = sorted({key.split(" ", 2)[1] for key in _all_rows()} - patterns)
    assert not stale, f"rows for URL patterns the project no longer serves: {stale}"


def test_every_admin_model_has_a_line():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert sorted(registered - set(ADMIN_MODELS)) == [], "add these to ADMIN_MODELS"
