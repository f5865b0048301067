"""The rollout audit log: every stage, traffic, alias and kill-switch change."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from reviewapp.models.projects import Project


class RolloutEventKind(models.TextChoices):
    STAGE = "stage", "Stage change"
    TRAFFIC = "traffic", "Traffic share change"
    THRESHOLD = "threshold", "Threshold change"
    ALIAS = "alias", "Alias move"
    OVERRIDE = "override", "Admin override"
    KILL_SWITCH = "kill_switch", "Kill switch"
    PROJECT = "project", "Project created"


class RolloutEvent(models.Model):
    """An append-only audit log entry with the evidence at that moment."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=RolloutEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=150, help_text="User name or 'system'.")
    from_value = models.CharField(max_length=200, blank=True)
    to_value = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.project.slug} {self.kind}: {self.from_value} -> {self.to_value}"

    def save(self, *args, **kwargs) -> None:
        """Insert only: an audit event is never edited."""
        if self.pk is not None:
            raise ValueError("RolloutEvent is append-only and cannot be changed")
        super().save(*args, **kwargs)
