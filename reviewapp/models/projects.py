"""Projects: one classification job, its label set and its rollout policy."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Stage(models.TextChoices):
    SHADOW = "shadow", "Shadow (manual only)"
    SUPERVISED = "supervised", "Supervised"
    PARTIAL = "partial", "Partial automation"
    AUTOMATED = "automated", "Automated"


def _fraction_check(field: str) -> models.CheckConstraint:
    """The database keeps ``field`` between 0 and 1 (a share or a rate)."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": 0}) & Q(**{f"{field}__lte": 1}),
        name=f"project_{field}_0_1",
    )


class ReviewOrder(models.TextChoices):
    """How the desk orders stage work within a priority (reviewapp.review.ordering)."""

    INFORMATIVE = "informative", "Most informative first (random samples stay first in, first out)"
    FIFO = "fifo", "First in, first out"


class ClipSampling(models.TextChoices):
    SEGMENTS = "segments", "K frames, one per equal segment (TSN)"
    RATE = "rate", "One frame every 1/fps seconds (at most K)"


def email_list_validate(value: str) -> None:
    """A comma-separated list of e-mail addresses (empty is allowed)."""
    for address in email_list(value):
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"{address!r} is not an e-mail address") from None


def email_list(value: str) -> list[str]:
    """The addresses of a comma-separated list, stripped, empty entries dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


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
    # Alerts (reviewapp/review/alerts.py): a priority label first, or in the top k with p >= p.
    alert_top_k = models.PositiveSmallIntegerField(
        default=0, help_text="Also alert when a priority label is in the top k (0: only first)."
    )
    alert_min_probability = models.FloatField(
        default=0.5, help_text="...with at least this probability."
    )
    alert_deadline_minutes = models.PositiveIntegerField(
        default=10, help_text="An alert nobody acknowledged or decided by then escalates."
    )
    alert_oncall_emails = models.TextField(
        blank=True, validators=[email_list_validate], help_text="Comma-separated addresses."
    )
    alert_escalation_emails = models.TextField(
        blank=True,
        validators=[email_list_validate],
        help_text="The wider list told when an alert escalates (comma-separated).",
    )
    # Rollout policy.
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.SHADOW)
    confidence_threshold = models.FloatField(default=0.95)
    ood_threshold = models.FloatField(null=True, blank=True)
    traffic_share = models.FloatField(default=0.0, help_text="Share of traffic automated, 0-1.")
    audit_rate = models.FloatField(default=0.05)
    kill_switch = models.BooleanField(default=False)
    # The error budget (issue 18): solo decisions wrong at most ε of the time, with confidence
    # 1 - δ. Per-class thresholds, gates, audit rates and demotions derive from these two.
    error_budget = models.FloatField(
        default=0.01, help_text="ε: the most the model's solo decisions may be wrong (0-1)."
    )
    error_delta = models.FloatField(
        default=0.05, help_text="δ: the chance the guarantee may fail (confidence 1 - δ)."
    )
    gate_min_reviews = models.PositiveIntegerField(default=200)
    # Derived from the error budget (1 - ε, 1 - δ): kept for the stage gate and older readers.
    gate_target_agreement = models.FloatField(default=0.99)
    gate_confidence = models.FloatField(default=0.95)
    # Rollout engine (see reviewapp/rollout.py).
    class_thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per-class confidence thresholds; above 1: never auto. Derived from the error "
        "budget by reviewapp.rollout.automation (Learn then Test), not typed by hand.",
    )
    class_audit_rates = models.JSONField(
        default=dict, blank=True, help_text="Per-class audit rates, derived (adaptive)."
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
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of new review tasks that bring a gold item along, blindly."
    )
    gold_min_accuracy = models.FloatField(
        default=0.0,
        help_text="Quality bar: a reviewer below this accuracy on gold is double-reviewed.",
    )
    gold_min_n = models.PositiveIntegerField(
        default=10, help_text="Gold answers a reviewer needs before the quality bar applies."
    )
    review_order = models.CharField(
        max_length=16,
        choices=ReviewOrder.choices,
        default=ReviewOrder.INFORMATIVE,
        help_text="Order of stage work on the desk; random calibration and audit samples keep "
        "first in, first out either way.",
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
    # Video clips (mlcore/video.py): which frames of a clip are predicted and shown.
    clip_sampling = models.CharField(
        max_length=16, choices=ClipSampling.choices, default=ClipSampling.SEGMENTS
    )
    clip_frames = models.PositiveSmallIntegerField(
        default=8, help_text="K: frames sampled per clip (the most, at a fixed rate)."
    )
    clip_fps = models.FloatField(default=1.0, help_text="Frames per second at a fixed rate.")
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
            *(
                _fraction_check(field)
                for field in (
                    "traffic_share",
                    "audit_rate",
                    "ab_share",
                    "drift_audit_rate",
                    "alert_min_probability",
                    "gold_rate",
                    "gold_min_accuracy",
                )
            ),
            models.CheckConstraint(
                condition=Q(error_budget__gt=0, error_budget__lt=1)
                & Q(error_delta__gt=0, error_delta__lt=1),
                name="project_error_budget_0_1",
            ),
            models.CheckConstraint(
                condition=Q(clip_frames__gte=1, clip_frames__lte=64, clip_fps__gt=0),
                name="project_clip_sampling_sane",
            ),
        ]

    def __str__(self) -> str:
        return self.name
