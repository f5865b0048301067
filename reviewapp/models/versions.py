"""Model versions, their aliases (champion, challenger) and their predictions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviewapp.models.items import Item
from reviewapp.models.projects import Project


class ModelVersion(models.Model):
    """An immutable trained artifact and its metadata."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="model_versions")
    number = models.PositiveIntegerField()
    artifact_path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    architecture = models.CharField(max_length=64)
    labels = models.JSONField()
    input_size = models.PositiveIntegerField()
    resize_method = models.CharField(max_length=16)
    metadata = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    training_run = models.OneToOneField(
        "TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_version",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="model_version_number"),
            models.UniqueConstraint(fields=["project", "sha256"], name="model_version_sha"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} v{self.number}"


class Alias(models.TextChoices):
    CHAMPION = "champion", "Champion"
    CHALLENGER = "challenger", "Challenger"


class AliasAssignment(models.Model):
    """Which version held which alias when; the open row (ended_at null) is the current one."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="aliases")
    alias = models.CharField(max_length=16, choices=Alias.choices)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "alias", "-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "alias"],
                condition=Q(ended_at__isnull=True),
                name="alias_one_current_holder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}:{self.alias} -> v{self.model_version.number}"


class Prediction(models.Model):
    """What one model version said about one item."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT)
    label = models.CharField(max_length=100)
    confidence = models.FloatField()
    probabilities = models.JSONField()
    ood_score = models.FloatField()
    is_ood = models.BooleanField(default=False)
    latency_ms = models.FloatField()
    # A clip's per-frame predictions ({"time", "label", "confidence", "is_ood"} each); the
    # fields above are then the clip's aggregated decision (mlcore.video.clip_aggregate).
    frames = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "model_version"], name="prediction_one_per_item_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item} -> {self.label} ({self.confidence:.2f})"
