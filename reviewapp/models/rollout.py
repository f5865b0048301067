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


class AutomationState(models.TextChoices):
    MANUAL = "manual", "With people"
    AUTOMATED = "automated", "Decided by the model"
    DEMOTED = "demoted", "Demoted"


class ClassAutomation(models.Model):
    """Whether one model version may decide one class alone, and the evidence for it.

    Keyed by model version: a new champion never inherits another version's thresholds.
    Written only by ``reviewapp.rollout.automation``.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="automation")
    model_version = models.ForeignKey(
        "reviewapp.ModelVersion", on_delete=models.CASCADE, related_name="automation"
    )
    label = models.CharField(max_length=100)
    state = models.CharField(
        max_length=16, choices=AutomationState.choices, default=AutomationState.MANUAL
    )
    threshold = models.FloatField(default=2.0, help_text="Above 1: never automatic.")
    blind_n = models.PositiveIntegerField(default=0, help_text="Blind labels of this class.")
    blind_errors = models.PositiveIntegerField(default=0)
    needed = models.PositiveIntegerField(null=True, blank=True, help_text="More blind labels.")
    audits = models.PositiveIntegerField(default=0, help_text="Audits since it was automated.")
    audit_errors = models.PositiveIntegerField(default=0)
    error_lower = models.FloatField(default=0.0, help_text="Monitor's lower bound on the error.")
    audit_rate = models.FloatField(default=0.0)
    since = models.DateTimeField(default=timezone.now, help_text="When it entered its state.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "model_version", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "label"], name="class_automation_one_per_label"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} of v{self.model_version_id}: {self.state}"
