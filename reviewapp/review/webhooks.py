"""Webhooks: every final outcome is POSTed, signed, to the URLs an admin registered.

Signature (Stripe's scheme): header ``Handoff-Signature: t=<unix seconds>,v1=<hex>`` where hex is
HMAC-SHA256(secret, "<t>." + raw body). Receivers recompute it, compare in constant time, refuse
timestamps older than a few minutes and ignore event ids (``Handoff-Event-Id``) seen before:
together that makes a captured request useless for replay. Delivery runs on Celery with
exponential backoff; after the last retry the delivery is a dead letter, visible in the admin.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from reviewapp import jobs
from reviewapp.models import DeliveryState, Outcome, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Handoff-Signature"
EVENT_HEADER = "Handoff-Event-Id"
EVENT_TYPE = "outcome.final"
DEFAULT_TOLERANCE_SECONDS = 300


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; worth retrying."""


RETRYABLE = (DeliveryFailed, urllib.error.URLError, http.client.HTTPException, OSError)


def webhook_secret_generate() -> str:
    """A new signing secret."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """The Handoff-Signature header value for a body sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_verify(
    *,
    secret: str,
    header: str,
    body: bytes,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when the header signs this body with this secret, recently enough."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = signature_header(secret=secret, body=body, timestamp=timestamp)
    return hmac.compare_digest(expected.split("v1=", 1)[1], parts.get("v1", ""))


def outcome_payload(outcome: Outcome, *, event_id: str) -> dict:
    """The JSON body sent for a final outcome."""
    item = outcome.item
    return {
        "type": EVENT_TYPE,
        "event_id": event_id,
        "project": item.project.slug,
        "item": {"id": item.pk, "key": item.key, "sha256": item.sha256},
        "outcome": {
            "label": outcome.label,
            "is_out_of_domain": outcome.is_out_of_domain,
            "decided_by": outcome.decided_by,
            "decided_at": outcome.created_at.isoformat(),
        },
    }


def outcome_finalised_on_commit(outcome_id: int) -> None:
    """Schedule webhook deliveries for a new outcome once its transaction commits."""
    transaction.on_commit(lambda: outcome_finalised(outcome_id=outcome_id))


def outcomes_finalised_on_commit(outcome_ids: list[int]) -> None:
    """Schedule webhook deliveries for a batch of new outcomes once their transaction commits."""
    if outcome_ids:
        transaction.on_commit(lambda: outcomes_finalised(outcome_ids=outcome_ids))


def outcomes_finalised(*, outcome_ids: list[int]) -> list[int]:
    """Create one delivery per active webhook that may see each outcome, and enqueue them.

    One look for an active webhook for the whole batch: none is the common case."""
    if not Webhook.objects.filter(is_active=True).exists():
        return []
    return [pk for outcome_id in outcome_ids for pk in _deliveries_create(outcome_id)]


def outcome_finalised(*, outcome_id: int) -> list[int]:
    """``outcomes_finalised`` for one outcome (every reviewer decision)."""
    return outcomes_finalised(outcome_ids=[outcome_id])


def _deliveries_create(outcome_id: int) -> list[int]:
    outcome = Outcome.objects.select_related("item__project").filter(pk=outcome_id).first()
    if outcome is None:
        return []
    hooks = Webhook.objects.filter(
        is_active=True,
        client__revoked_at__isnull=True,
        client__projects=outcome.item.project_id,
    ).distinct()
    created = []
    for hook in hooks:
        delivery = WebhookDelivery(webhook=hook, outcome=outcome, payload={})
        delivery.payload = outcome_payload(outcome, event_id=str(delivery.event_id))
        try:
            with transaction.atomic():
                delivery.save()
        except IntegrityError:
            continue  # already scheduled for this webhook
        created.append(delivery.pk)
        jobs.job_send_on_commit(jobs.DELIVER_WEBHOOK, delivery.pk)
    return created


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: the target is exactly the URL an admin registered."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> int:
    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise DeliveryFailed(f"refusing to POST to a non-HTTP URL {url!r}")
    # http(s) only, checked above; the opener follows no redirects and uses no proxy.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=settings.HANDOFF_WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def delivery_attempt(*, delivery_id: int, final: bool) -> str:
    """POST one delivery once; raise DeliveryFailed to retry, or mark it dead when `final`."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.state in {DeliveryState.DELIVERED, DeliveryState.DEAD}:
        return delivery.state if delivery else "missing"
    hook = delivery.webhook
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Handoff-Webhooks/1",
        EVENT_HEADER: str(delivery.event_id),
        SIGNATURE_HEADER: signature_header(secret=hook.secret, body=body, timestamp=timestamp),
    }
    started, status_code, error = time.monotonic(), None, ""
    if not hook.is_active:
        error = "webhook disabled"
    else:
        try:
            status_code = _post(url=hook.url, body=body, headers=headers)
            error = "" if 200 <= status_code < 300 else f"HTTP {status_code}"
        except RETRYABLE as exc:
            error = f"{exc.__class__.__name__}: {exc}"[:500]
    ok = not error
    state = (
        DeliveryState.DELIVERED if ok else DeliveryState.DEAD if final else DeliveryState.RETRYING
    )
    _attempt_record(delivery, state=state, status_code=status_code, error=error, started=started)
    if state == DeliveryState.RETRYING:
        raise DeliveryFailed(error)
    logger.info("webhook.%s delivery=%s url=%s", state, delivery.pk, hook.url)
    return state


def _attempt_record(delivery: WebhookDelivery, *, state, status_code, error, started) -> None:
    now = timezone.now()
    delivery.log = [
        *delivery.log,
        {
            "at": now.isoformat(),
            "status": status_code,
            "error": error,
            "ms": round((time.monotonic() - started) * 1000, 1),
        },
    ]
    delivery.attempts += 1
    delivery.state, delivery.last_status_code, delivery.last_error = state, status_code, error
    delivery.delivered_at = now if state == DeliveryState.DELIVERED else None
    delivery.save(
        update_fields=[
            "log",
            "attempts",
            "state",
            "last_status_code",
            "last_error",
            "delivered_at",
        ]
    )


def delivery_redeliver(*, delivery: WebhookDelivery) -> None:
    """Send a dead letter again (an admin action): back to pending, enqueued after commit."""
    updated = WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.DEAD).update(
        state=DeliveryState.PENDING
    )
    if updated:
        jobs.job_send_on_commit(jobs.DELIVER_WEBHOOK, delivery.pk)
