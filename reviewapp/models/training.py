"""Training runs: trigger, frozen snapshot, state, progress and result."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviewapp.models.projects import Project


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RunTrigger(models.TextChoices):
    MANUAL = "manual", "Admin"
    SEED = "seed", "Demo seed"
    SCHEDULE = "schedule", "Schedule"
    CORRECTIONS = "corrections", "New corrections"
    DRIFT = "drift", "Drift alarm"
    RETRY = "retry", "Retry"


class TrainingRun(models.Model):
    """One training job: its frozen snapshot, params, progress and result."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="training_runs")
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    params = models.JSONField(default=dict)
    snapshot = models.JSONField(default=list, help_text="[[item_id, label], ...] frozen at start")
    snapshot_hash = models.CharField(max_length=64, blank=True)
    progress = models.FloatField(default=0.0)
    progress_detail = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    snapshot_info = models.JSONField(
        default=dict, blank=True, help_text="Refresh policy applied, gold and holdout item ids."
    )
    evaluation = models.JSONField(
        default=dict, blank=True, help_text="Candidate vs champion on the same items."
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(state__in=["queued", "running"]),
                name="training_one_active_run_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} run {self.pk} ({self.state})"
