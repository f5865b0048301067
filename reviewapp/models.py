"""The domain model of Handoff (see DESIGN.md, "Domain").

Invariants live in the database: one prediction per (item, model version), one open review task
per (item, reason), one final outcome per item, one current holder per (project, alias), one
active training run per project.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Stage(models.TextChoices):
    SHADOW = "shadow", "Shadow (manual only)"
    SUPERVISED = "supervised", "Supervised"
    PARTIAL = "partial", "Partial automation"
    AUTOMATED = "automated", "Automated"


class Project(models.Model):
    """One classification job: label set, rollout policy, data-refresh policy."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    labels = models.JSONField(help_text="Ordered list of class labels.")
    priority_labels = models.JSONField(
        default=list, blank=True, help_text="Labels that always reach a human first."
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="review_projects"
    )
    # Rollout policy.
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.SHADOW)
    confidence_threshold = models.FloatField(default=0.95)
    ood_threshold = models.FloatField(null=True, blank=True)
    traffic_share = models.FloatField(default=0.0, help_text="Share of traffic automated, 0-1.")
    audit_rate = models.FloatField(default=0.05)
    kill_switch = models.BooleanField(default=False)
    gate_min_reviews = models.PositiveIntegerField(default=200)
    gate_target_agreement = models.FloatField(default=0.95)
    gate_confidence = models.FloatField(default=0.95)
    # Rollout engine (see reviewapp/rollout.py).
    class_thresholds = models.JSONField(
        default=dict, blank=True, help_text="Per-class confidence thresholds; above 1: never auto."
    )
    ab_share = models.FloatField(default=0.0, help_text="Share of traffic the challenger acts on.")
    auto_promote_after_hours = models.FloatField(
        null=True, blank=True, help_text="Promote once the gate has passed this long (off: empty)."
    )
    gate_passing_since = models.DateTimeField(null=True, blank=True)
    stage_entered_at = models.DateTimeField(default=timezone.now)
    # Review quality.
    double_review_rate = models.FloatField(
        default=0.0, help_text="Share of human-decided items that get a second, blind review."
    )
    # Data-refresh policy for retraining.
    refresh_max_age_days = models.PositiveIntegerField(null=True, blank=True)
    refresh_per_class_cap = models.PositiveIntegerField(null=True, blank=True)
    refresh_half_life_days = models.FloatField(
        null=True,
        blank=True,
        help_text="Recency weighting: a human label this many days old is kept with odds 1/2.",
    )
    training_ood_as_class = models.BooleanField(
        default=False, help_text="Train out-of-domain outcomes as their own class."
    )
    training_skip_corrupt = models.BooleanField(
        default=False, help_text="Skip unreadable images (and say so) instead of failing the run."
    )
    retrain_every_corrections = models.PositiveIntegerField(
        null=True, blank=True, help_text="Start a run after this many new corrections."
    )
    # Drift monitoring (reviewapp/monitoring.py).
    drift_retrain = models.BooleanField(
        default=False, help_text="Start a retraining run when a drift alarm opens."
    )
    drift_audit_rate = models.FloatField(
        default=0.25, help_text="Audit rate of auto-decided items while a drift alarm is open."
    )
    drift_alarm_open = models.BooleanField(
        default=False, help_text="Set by the drift monitor while any alarm is open."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("review_items", "Can review items in the projects they are a reviewer of"),
            ("manage_rollout", "Can change rollout stage, traffic, thresholds and aliases"),
            ("trigger_training", "Can start and cancel training runs"),
            ("upload_items", "Can upload items"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(traffic_share__gte=0) & Q(traffic_share__lte=1),
                name="project_traffic_share_0_1",
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1),
                name="project_audit_rate_0_1",
            ),
            models.CheckConstraint(
                condition=Q(ab_share__gte=0) & Q(ab_share__lte=1),
                name="project_ab_share_0_1",
            ),
            models.CheckConstraint(
                condition=Q(drift_audit_rate__gte=0) & Q(drift_audit_rate__lte=1),
                name="project_drift_audit_rate_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ItemOrigin(models.TextChoices):
    BASE = "base", "Base training set"
    UPLOAD = "upload", "Web upload"
    FOLDER = "folder", "Folder ingest"
    API = "api", "API"
    SIMULATION = "simulation", "Simulation"


def item_upload_path(instance: Item, filename: str) -> str:
    """Content-addressed path; the client's filename never becomes part of it."""
    digest = instance.sha256
    return f"items/{instance.project_id}/{digest[:2]}/{digest}.{instance.image_format}"


class Item(models.Model):
    """One input image, stored once per project (content-hashed)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="items")
    sha256 = models.CharField(max_length=64)
    image = models.FileField(upload_to=item_upload_path, max_length=255)
    image_format = models.CharField(max_length=8, default="png")
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
    source = models.JSONField(default=dict, blank=True)
    original_filename = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The item is its own outbox entry: set at ingest, cleared once the prediction task has
    # run; the sweeper (reviewapp.sweep_predictions) re-sends what is overdue.
    prediction_due_at = models.DateTimeField(null=True, blank=True)

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


class ReviewReason(models.TextChoices):
    SHADOW = "shadow", "Shadow stage"
    SUPERVISED = "supervised", "Supervised stage"
    LOW_CONFIDENCE = "low_confidence", "Low confidence"
    OUT_OF_DOMAIN = "out_of_domain", "Out of domain"
    AUDIT = "audit", "Audit sample"
    PRIORITY = "priority", "Priority alert"
    DISAGREEMENT = "disagreement", "Challenger disagreement"
    DOUBLE_REVIEW = "double_review", "Double review"
    ADJUDICATION = "adjudication", "Adjudication"


REASON_PRIORITY = {
    ReviewReason.PRIORITY: 100,
    ReviewReason.ADJUDICATION: 80,
    ReviewReason.OUT_OF_DOMAIN: 60,
    ReviewReason.DISAGREEMENT: 50,
    ReviewReason.LOW_CONFIDENCE: 40,
    ReviewReason.AUDIT: 30,
    ReviewReason.SUPERVISED: 20,
    ReviewReason.SHADOW: 20,
    ReviewReason.DOUBLE_REVIEW: 10,
}


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class ReviewTask(models.Model):
    """Why a human must look at an item, with its priority and lease."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="tasks")
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=24, choices=ReviewReason.choices)
    priority = models.IntegerField(default=0)
    audit_probability = models.FloatField(
        null=True, blank=True, help_text="For audit samples: the probability of being sampled."
    )
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "created_at"]
        indexes = [
            models.Index(fields=["project", "status", "-priority", "created_at"]),
            # The claim's scan order over open and claimed tasks (reviewapp.queues).
            models.Index(
                fields=["project", "-priority", "created_at", "id"],
                condition=Q(status__in=["open", "claimed"]),
                name="task_claim_order",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "reason"],
                condition=Q(status__in=["open", "claimed"]),
                name="task_one_open_per_item_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} task for {self.item}"


class Verdict(models.TextChoices):
    CONFIRM = "confirm", "Confirm"
    CORRECT = "correct", "Correct"
    OUT_OF_DOMAIN = "ood", "Out of domain / unusable"
    SKIP = "skip", "Skip"


class Decision(models.Model):
    """A reviewer's verdict on a task; undo is recorded, never erased."""

    task = models.ForeignKey(ReviewTask, on_delete=models.PROTECT, related_name="decisions")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    label = models.CharField(max_length=100, blank=True)
    suggested_label = models.CharField(max_length=100, blank=True)
    suggestion_shown = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reviewer}: {self.verdict} {self.label}"


class DecidedBy(models.TextChoices):
    HUMAN = "human", "Human"
    MODEL = "model", "Model (auto-accept)"


class Outcome(models.Model):
    """The item's final label and who decided it."""

    item = models.OneToOneField(Item, on_delete=models.PROTECT, related_name="outcome")
    label = models.CharField(max_length=100, blank=True, help_text="Empty when out of domain.")
    is_out_of_domain = models.BooleanField(default=False)
    decided_by = models.CharField(max_length=8, choices=DecidedBy.choices)
    decision = models.OneToOneField(
        Decision, null=True, blank=True, on_delete=models.PROTECT, related_name="outcome"
    )
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    audit_probability = models.FloatField(
        default=1.0, help_text="Probability with which this item was sampled for human review."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.item}: {self.label or 'out of domain'} ({self.decided_by})"


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


# API clients, webhooks and their deliveries (issue 7) live in their own module.
from reviewapp.models_api import (  # noqa: E402, F401
    ApiClient,
    DeliveryState,
    Webhook,
    WebhookDelivery,
)

# Drift monitoring (issue 8) lives in its own module.
from reviewapp.models_monitoring import (  # noqa: E402, F401
    AlarmStatus,
    DriftAlarm,
    DriftCheck,
    DriftSample,
    DriftStatistic,
    DriftWindow,
)
