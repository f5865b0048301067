"""Alerts: a priority label the model predicted (or suspects) is pushed to people at once.

Imported by ``reviewapp.models`` so that Django registers the model with the app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from reviewapp.models.items import Item
from reviewapp.models.projects import Project


class AlertReason(models.TextChoices):
    TOP1 = "top1", "Priority label predicted"
    TOPK = "topk", "Priority label in the top k"


class AlertEvent(models.TextChoices):
    RAISED = "alert.raised", "Raised"
    ESCALATED = "alert.escalated", "Escalated"


class Alert(models.Model):
    """One item that must reach a person fast: who was told when, who took it, when decided."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alerts")
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="alert")
    label = models.CharField(max_length=100, help_text="The priority label that raised it.")
    reason = models.CharField(max_length=8, choices=AlertReason.choices)
    probability = models.FloatField(help_text="The model's probability of the label.")
    raised_at = models.DateTimeField(default=timezone.now)
    pushed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the on-call list was notified."
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(
        null=True, blank=True, help_text="When a reviewer's decision settled the item."
    )

    class Meta:
        ordering = ["-raised_at"]
        indexes = [models.Index(fields=["project", "-raised_at"])]

    def __str__(self) -> str:
        return f"{self.label} on item {self.item_id} ({self.reason})"
