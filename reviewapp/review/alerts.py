"""Alerts: a priority label the model predicts (top1) or suspects (topk) is pushed to people.

Raised once per item in the routing step (``alert_raise_for``), then pushed after commit by a
Celery task (``alert_notify``): a signed ``alert.raised`` webhook event through the outcome
webhooks' machinery (subscriptions, signing, retries, dead letters) and an e-mail to the
project's on-call list. An alert nobody acknowledged or decided within the project's deadline
escalates (``alerts_escalate_due``, run by beat with an injected clock in tests): an
``alert.escalated`` event and an e-mail to the on-call and escalation lists.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from reviewapp import jobs
from reviewapp.models import Alert, AlertEvent, Prediction, Webhook, WebhookDelivery
from reviewapp.models.projects import email_list
from reviewapp.rollout import policy as rollout_policy

logger = logging.getLogger(__name__)

RESEND_UNPUSHED_AFTER = timedelta(minutes=1)  # the broker lost the first push: try again


def alert_raise_for(*, prediction: Prediction) -> Alert | None:
    """Raise the item's alert when its prediction hits a priority label; push it after commit.

    Idempotent (one alert per item): a redelivered prediction returns the stored alert and
    pushes nothing twice. Returns None when the prediction raises no alert.
    """
    project = prediction.item.project
    if not project.priority_labels:
        return None
    hit = rollout_policy.Policy.from_project(project).priority_hit(
        rollout_policy.Scored.of(prediction)
    )
    if hit is None:
        return None
    try:
        with transaction.atomic():
            alert, created = Alert.objects.get_or_create(
                item_id=prediction.item_id,
                defaults={
                    "project": project,
                    "label": hit.label,
                    "reason": hit.reason,
                    "probability": hit.probability,
                },
            )
    except IntegrityError:
        return Alert.objects.get(item_id=prediction.item_id)
    if created:
        logger.info("alert.raised alert=%s item=%s label=%s", alert.pk, alert.item_id, hit.label)
        jobs.job_send_on_commit(jobs.ALERT_NOTIFY, alert.pk, AlertEvent.RAISED.value)
    return alert


def alert_payload(alert: Alert, *, event: str, event_id: str) -> dict:
    """The JSON body of an ``alert.raised`` / ``alert.escalated`` webhook event."""
    item = alert.item
    return {
        "type": event,
        "event_id": event_id,
        "project": alert.project.slug,
        "item": {"id": item.pk, "key": item.key, "sha256": item.sha256},
        "alert": {
            "id": alert.pk,
            "label": alert.label,
            "reason": alert.reason,
            "probability": alert.probability,
            "raised_at": alert.raised_at.isoformat(),
            "deadline_at": alert_deadline(alert).isoformat(),
            "escalated_at": alert.escalated_at.isoformat() if alert.escalated_at else None,
        },
    }


def alert_deadline(alert: Alert) -> datetime:
    """When the alert escalates unless someone takes it."""
    return alert.raised_at + timedelta(minutes=alert.project.alert_deadline_minutes)


def alert_notify(*, alert_id: int, event: str, now: datetime | None = None) -> str:
    """Push one alert event: schedule its webhook deliveries, send its e-mail, stamp the push.

    Runs in the ``alert_notify`` task. The deliveries are unique per (webhook, alert, event), so
    a redelivered task schedules none twice; the e-mail is sent at least once.
    """
    alert = Alert.objects.select_related("project", "item").filter(pk=alert_id).first()
    if alert is None:
        return "missing"
    deliveries = _deliveries_create(alert=alert, event=event)
    recipients = email_list(alert.project.alert_oncall_emails)
    if event == AlertEvent.ESCALATED:
        wider = email_list(alert.project.alert_escalation_emails)
        recipients = list(dict.fromkeys([*recipients, *wider]))
    if recipients:
        subject, body = _email_text(alert, event=event)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    if event == AlertEvent.RAISED:
        Alert.objects.filter(pk=alert.pk, pushed_at__isnull=True).update(
            pushed_at=now or timezone.now()
        )
    logger.info(
        "%s alert=%s webhooks=%s emails=%s", event, alert.pk, len(deliveries), len(recipients)
    )
    return event


def _deliveries_create(*, alert: Alert, event: str) -> list[int]:
    hooks = Webhook.objects.filter(
        is_active=True, client__revoked_at__isnull=True, client__projects=alert.project_id
    ).distinct()
    created = []
    for hook in hooks:
        delivery = WebhookDelivery(webhook=hook, alert=alert, event_type=event, payload={})
        delivery.payload = alert_payload(alert, event=event, event_id=str(delivery.event_id))
        try:
            with transaction.atomic():
                delivery.save()
        except IntegrityError:
            continue  # already scheduled: a redelivered notify task
        created.append(delivery.pk)
        jobs.job_send_on_commit(jobs.DELIVER_WEBHOOK, delivery.pk)
    return created


def _email_text(alert: Alert, *, event: str) -> tuple[str, str]:
    project, item = alert.project, alert.item
    escalated = event == AlertEvent.ESCALATED
    prefix = "[Handoff] ESCALATED: " if escalated else "[Handoff] "
    subject = f"{prefix}{alert.label} on {project.name} (item {item.key or item.pk})"
    why = (
        "the model predicted it"
        if alert.reason == "top1"
        else f"it is in the model's top {project.alert_top_k}"
    )
    lines = [
        f"Priority label {alert.label!r} ({why}, probability {alert.probability:.0%}).",
        f"Project: {project.name} ({project.slug}); item {item.pk}, key {item.key!r}.",
        f"Raised at {alert.raised_at:%Y-%m-%d %H:%M:%S %Z}; to decide by "
        f"{alert_deadline(alert):%H:%M:%S %Z}.",
    ]
    if escalated:
        lines.append("Nobody acknowledged or decided it before its deadline.")
    lines.append(f"Review desk: {settings.HANDOFF_SITE_URL}/projects/{project.slug}/review/")
    return subject, "\n".join(lines) + "\n"


def alerts_escalate_due(*, now: datetime | None = None) -> list[int]:
    """Escalate every open alert past its project's deadline; re-push ones never pushed.

    Run by beat (``alerts_escalate``); ``now`` is injected by tests. The conditional update
    makes two overlapping runs escalate an alert once. Returns the ids escalated.
    """
    now = now or timezone.now()
    open_alerts = Alert.objects.select_related("project").filter(
        escalated_at__isnull=True, acknowledged_at__isnull=True, decided_at__isnull=True
    )
    escalated = []
    for alert in open_alerts:
        if alert_deadline(alert) > now:
            continue
        updated = Alert.objects.filter(
            pk=alert.pk,
            escalated_at__isnull=True,
            acknowledged_at__isnull=True,
            decided_at__isnull=True,
        ).update(escalated_at=now)
        if updated:
            escalated.append(alert.pk)
            logger.warning("alert.escalated alert=%s item=%s", alert.pk, alert.item_id)
            jobs.job_send_on_commit(jobs.ALERT_NOTIFY, alert.pk, AlertEvent.ESCALATED.value)
    unpushed = Alert.objects.filter(
        pushed_at__isnull=True, raised_at__lt=now - RESEND_UNPUSHED_AFTER
    ).values_list("pk", flat=True)
    for alert_id in unpushed:
        jobs.job_send_on_commit(jobs.ALERT_NOTIFY, alert_id, AlertEvent.RAISED.value)
    return escalated


def alert_acknowledge(*, alert: Alert, user, now: datetime | None = None) -> bool:
    """A reviewer takes the alert (stops its escalation); False when someone already had."""
    now = now or timezone.now()
    updated = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_by=user, acknowledged_at=now
    )
    if updated:
        logger.info("alert.acknowledged alert=%s user=%s", alert.pk, user.pk)
    return bool(updated)


def alert_decided(*, item_id: int, now: datetime) -> int:
    """A reviewer's decision settled the item: stamp its alert's decision time (once)."""
    return Alert.objects.filter(item_id=item_id, decided_at__isnull=True).update(decided_at=now)


def alerts_open(*, project, now: datetime | None = None) -> list[dict]:
    """The desk's banner: the project's open alerts, oldest first, with the time left."""
    now = now or timezone.now()
    rows = (
        Alert.objects.filter(project=project, acknowledged_at__isnull=True, decided_at__isnull=True)
        .select_related("item", "project")
        .order_by("raised_at")[:20]
    )
    result = []
    for alert in rows:
        seconds_left = int((alert_deadline(alert) - now).total_seconds())
        result.append(
            {
                "alert": alert,
                "seconds_left": seconds_left,
                "minutes_left": -(-seconds_left // 60),  # rounded up: "1 min left" until due
                "overdue": seconds_left <= 0,
            }
        )
    return result
