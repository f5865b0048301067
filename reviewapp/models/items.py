"""Items: one input image, stored once per project (content-hashed)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviewapp.models.projects import Project


class ItemOrigin(models.TextChoices):
    BASE = "base", "Base training set"
    UPLOAD = "upload", "Web upload"
    FOLDER = "folder", "Folder ingest"
    API = "api", "API"
    SIMULATION = "simulation", "Simulation"


class ItemKind(models.TextChoices):
    IMAGE = "image", "Image"
    CLIP = "clip", "Video clip"


def item_upload_path(instance: Item, filename: str) -> str:
    """Content-addressed path; the client's filename never becomes part of it."""
    digest = instance.sha256
    return f"items/{instance.project_id}/{digest[:2]}/{digest}.{instance.image_format}"


def item_frame_path(instance: Item, index: int) -> str:
    """Where a clip's sampled frame number `index` (0-based, in sampling order) is stored."""
    digest = instance.sha256
    return f"items/{instance.project_id}/{digest[:2]}/{digest}.frame{index:02d}.png"


class Item(models.Model):
    """One input image, stored once per project (content-hashed)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="items")
    sha256 = models.CharField(max_length=64)
    image = models.FileField(upload_to=item_upload_path, max_length=255)
    image_format = models.CharField(max_length=8, default="png")
    kind = models.CharField(max_length=8, choices=ItemKind.choices, default=ItemKind.IMAGE)
    # A clip's container facts and its sampled frames ({"time", "index"} each, stored as PNGs
    # at item_frame_path): what was predicted and what the desk shows.
    clip = models.JSONField(default=dict, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    key = models.CharField(max_length=200, help_text="Stable key: client key or content hash.")
    client_key = models.CharField(max_length=200, blank=True, default="")
    origin = models.CharField(max_length=16, choices=ItemOrigin.choices)
    base_label = models.CharField(
        max_length=100, blank=True, default="", help_text="Known label for base-set items."
    )
    is_gold = models.BooleanField(
        default=False, help_text="A known-label item used to measure reviewer accuracy."
    )
    gold_label = models.CharField(
        max_length=100, blank=True, default="", help_text="The gold item's known label."
    )
    source = models.JSONField(default=dict, blank=True)
    original_filename = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The item is its own outbox entry: set at ingest, cleared once the prediction task has
    # run; the sweeper (reviewapp.sweep_predictions) re-sends what is overdue.
    prediction_due_at = models.DateTimeField(null=True, blank=True)
    # A prediction worker's lease on the item (reviewapp/intake/batching.py): while it lies in
    # the future no other worker claims the item; a worker that died lets it lapse.
    prediction_claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["prediction_due_at"],
                condition=Q(prediction_due_at__isnull=False),
                name="item_prediction_due",
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="item_unique_content"),
            models.UniqueConstraint(fields=["project", "key"], name="item_unique_key"),
            models.UniqueConstraint(
                fields=["project", "client_key"],
                condition=~Q(client_key=""),
                name="item_unique_client_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.key[:16]}"

    @property
    def frame_names(self) -> list[str]:
        """Storage names of a clip's sampled frames (empty for an image)."""
        if self.kind != ItemKind.CLIP:
            return []
        return [item_frame_path(self, i) for i in range(len(self.clip.get("frames", [])))]
