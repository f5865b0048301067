"""One JSON error shape for every API failure: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


def _message(detail) -> str:
    if isinstance(detail, dict) and set(detail) == {"detail"}:  # DRF's {"detail": ...}
        return _message(detail["detail"])
    if isinstance(detail, list):
        return "; ".join(_message(part) for part in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_message(value)}" for key, value in detail.items())
    return str(detail)


def exception_handler(exc, context):
    """DRF's handler, then reshape: every error body has a code and a readable message."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.messages)
    if isinstance(exc, RequestDataTooBig):  # Django's own refusal: a bare HTML 400 otherwise
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        exc = PayloadTooLarge(
            f"The request body is larger than {limit_mb:g} MB (HANDOFF_API_MAX_REQUEST_BYTES). "
            "Nothing was stored: send the items in smaller batches."
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    code = getattr(exc, "default_code", "error")
    body = {"code": code, "message": _message(detail)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict):
        body["fields"] = detail
    elif isinstance(exc, exceptions.ValidationError):
        body["code"] = "invalid"
    response.data = {"error": body}
    return response


@csrf_exempt  # token clients send no CSRF cookie: an unknown path is a 404 for every method
def not_found(request, *args, **kwargs) -> JsonResponse:
    """JSON 404 for any unknown path under /api/, whatever the method."""
    body = {"error": {"code": "not_found", "message": f"No API endpoint at {request.path}."}}
    return JsonResponse(body, status=404)
