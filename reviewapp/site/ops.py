"""Operations endpoints: liveness, readiness (database + broker) and Prometheus metrics.

/healthz and /readyz answer anyone (they say only "ok" or "fail"; the reasons go to the log).
/metrics answers a bearer token equal to ``HANDOFF_METRICS_TOKEN`` or a logged-in staff user;
everyone else gets 401 (no credentials) or 403.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app
from reviewapp.site import metrics

logger = logging.getLogger(__name__)
BROKER_TIMEOUT_SECONDS = 3


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers requests (touches nothing else)."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # noqa: BLE001 - any failure means "not ready"; the log says which
        logger.exception("readyz.database_failed")
        return False


def _broker_ok() -> bool:
    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"; the log says which
        logger.exception("readyz.broker_failed")
        return False


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers a query and the broker accepts a connection."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(checks.values())
    body = {name: "ok" if ok else "fail" for name, ok in checks.items()}
    body["status"] = "ok" if ready else "fail"
    return JsonResponse(body, status=200 if ready else 503)


def _bearer_ok(request: HttpRequest) -> bool | None:
    """True/False for a presented bearer token; None when none was presented."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    expected = settings.HANDOFF_METRICS_TOKEN
    return bool(expected) and hmac.compare_digest(header[7:].strip().encode(), expected.encode())


@login_not_required
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition for a scraper with the token, or for staff in a browser."""
    token = _bearer_ok(request)
    if not (token or (token is None and request.user.is_staff)):
        if token is None and not request.user.is_authenticated:
            response = HttpResponse("Metrics need a bearer token.", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        logger.warning("metrics.refused user=%s token=%s", request.user.pk, token is not None)
        return HttpResponse("Metrics are for the scraper's token or staff users.", status=403)
    body, content_type = metrics.metrics_render(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
