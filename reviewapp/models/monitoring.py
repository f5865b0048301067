"""Drift monitoring (issue 8): per-prediction signals, the checks' series, and alarms.

Imported by ``reviewapp.models`` so that Django registers these models with the app. The
statistics are computed by ``mlcore.drift``; ``reviewapp.monitoring`` stores and acts on them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class DriftStatistic(models.TextChoices):
    LABELS = "labels", "Predicted labels"
    CONFIDENCE = "confidence", "Confidence"
    OOD_RATE = "ood_rate", "Out-of-domain rate"
    EMBEDDING = "embedding", "Embedding (penultimate layer)"
    BRIGHTNESS = "brightness", "Brightness"
    CONTRAST = "contrast", "Contrast"
    COLOURFULNESS = "colourfulness", "Colourfulness"
    RESOLUTION = "resolution", "Effective resolution"


class DriftWindow(models.TextChoices):
    RECENT = "recent", "Last N items"
    DAY = "day", "Today (UTC)"


class AlarmStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLEARED = "cleared", "Cleared"


class DriftSample(models.Model):
    """What drift checks need of one prediction: a compact embedding and image statistics."""

    prediction = models.OneToOneField(
        "reviewapp.Prediction", on_delete=models.CASCADE, related_name="drift_sample"
    )
    embedding = models.JSONField(
        default=list, help_text="Random projection of the penultimate-layer embedding."
    )
    image_stats = models.JSONField(default=dict, help_text="Brightness, contrast, colour, ...")

    def __str__(self) -> str:
        return f"drift sample of prediction {self.prediction_id}"


class DriftCheck(models.Model):
    """One evaluation of one statistic over one window (the series the charts draw)."""

    project = models.ForeignKey(
        "reviewapp.Project", on_delete=models.CASCADE, related_name="drift_checks"
    )
    model_version = models.ForeignKey(
        "reviewapp.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL
    )
    statistic = models.CharField(max_length=16, choices=DriftStatistic.choices)
    window = models.CharField(max_length=8, choices=DriftWindow.choices)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    n_items = models.PositiveIntegerField()
    value = models.FloatField(help_text="The test statistic or distance.")
    p_value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(help_text="Alarm when p_value < threshold (per-test level).")
    alarming = models.BooleanField(default=False)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "statistic", "window", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.project_id} {self.statistic}/{self.window} p={self.p_value}"


class DriftAlarm(models.Model):
    """An alarm people and the rollout engine act on; at most one open per statistic."""

    project = models.ForeignKey(
        "reviewapp.Project", on_delete=models.CASCADE, related_name="drift_alarms"
    )
    model_version = models.ForeignKey(
        "reviewapp.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL
    )
    statistic = models.CharField(max_length=16, choices=DriftStatistic.choices)
    status = models.CharField(max_length=8, choices=AlarmStatus.choices, default=AlarmStatus.OPEN)
    value = models.FloatField()
    p_value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    onset_at = models.DateTimeField(help_text="Estimated start of the change.")
    raised_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(help_text="Which statistic, how far, since when.")
    detail = models.JSONField(default=dict, blank=True)
    example_item_ids = models.JSONField(default=list, blank=True)
    actions = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "statistic"],
                condition=Q(status="open"),
                name="drift_alarm_one_open_per_statistic",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.statistic} alarm ({self.status})"
