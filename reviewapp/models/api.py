"""Machine clients of the REST API: hashed tokens scoped to projects, webhooks, deliveries.

Imported by ``reviewapp.models`` so that Django registers these models with the app.
"""

from __future__ import annotations

import uuid

from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ApiClient(models.Model):
    """A machine client (camera trap, app, pipeline): one token, scoped to some projects."""

    name = models.CharField(max_length=200)
    token_prefix = models.CharField(
        max_length=12, editable=False, help_text="The first characters, to tell tokens apart."
    )
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    projects = models.ManyToManyField("reviewapp.Project", related_name="api_clients")
    throttle_rate = models.CharField(
        max_length=32,
        blank=True,
        validators=[RegexValidator(r"^[1-9][0-9]{0,6}/(s|sec|m|min|h|hour|d|day)$")],
        help_text="Requests allowed, e.g. '600/min' (empty: the site default).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_authenticated(self) -> bool:
        """DRF and the throttles treat the client as the authenticated principal."""
        return True

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Webhook(models.Model):
    """A URL an admin registered for a client; final outcomes are POSTed to it, signed."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    secret = models.CharField(
        max_length=100, editable=False, help_text="HMAC-SHA256 signing secret (shown once)."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["client", "url"]

    def __str__(self) -> str:
        return self.url


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead letter"


class WebhookDelivery(models.Model):
    """One event (an outcome, an alert) sent to one webhook: payload, attempts, final state."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=32, default="outcome.final")
    outcome = models.ForeignKey(
        "reviewapp.Outcome",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_deliveries",
    )
    alert = models.ForeignKey(
        "reviewapp.Alert",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_deliveries",
    )
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payload = models.JSONField()
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    log = models.JSONField(default=list, blank=True, help_text="One entry per attempt.")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "outcome"], name="webhook_delivery_one_per_outcome"
            ),
            models.UniqueConstraint(
                fields=["webhook", "alert", "event_type"],
                condition=Q(alert__isnull=False),
                name="webhook_delivery_one_per_alert_event",
            ),
        ]
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.webhook} ({self.state})"
