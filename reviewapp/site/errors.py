"""The 500 handler: an outage (database down, media full) gets a clear 503/507, not a 500.

Django calls ``handler500`` while the exception is being handled, so ``sys.exc_info()`` holds
it. Nothing here touches the database: it may be the thing that is down.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from reviewapp.intake.media import StorageUnavailable

logger = logging.getLogger(__name__)

UNAVAILABLE = (
    503,
    "unavailable",
    "The database is unavailable. Nothing was saved; please try again in a minute.",
)
STORAGE = (507, "storage_unavailable", "")
INTERNAL = (500, "server_error", "Something went wrong on our side; it has been logged.")


def _classify(exc: BaseException | None) -> tuple[int, str, str]:
    if isinstance(exc, (OperationalError, InterfaceError)):
        return UNAVAILABLE
    if isinstance(exc, StorageUnavailable):
        return (STORAGE[0], STORAGE[1], str(exc))
    return INTERNAL


def server_error(request: HttpRequest) -> HttpResponse:
    """JSON under /api/, a page elsewhere; 503 + Retry-After for outages, 507 for full media."""
    status, code, message = _classify(sys.exc_info()[1])
    if status != 500:
        logger.warning("request.outage status=%s code=%s path=%s", status, code, request.path)
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    else:
        page = render_to_string("5xx.html", {"status": status, "message": message})
        response = HttpResponse(page, status=status)
    if status == 503:
        response["Retry-After"] = "30"
    return response
