"""Review tasks, reviewers' decisions and each item's final outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviewapp.models.items import Item
from reviewapp.models.projects import Project
from reviewapp.models.versions import ModelVersion, Prediction


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
    detail = models.CharField(
        max_length=200, blank=True, default="", help_text="Why, in one line (the domain guard's)."
    )
    # Margin uncertainty plus embedding diversity, set when the task is routed; null for tasks
    # not ordered by it (random samples, alerts, second reviews). See reviewapp.review.ordering.
    informativeness = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    # A gold item mixed into the queue under an ordinary reason: its decision is scored against
    # the known label and never becomes the item's outcome (reviewapp.review.gold).
    gold_check = models.BooleanField(default=False)
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
            # The same scan with the project's review order "informative": unscored tasks first
            # (PostgreSQL's DESC puts nulls first), then the most informative (review.claim).
            models.Index(
                fields=["project", "-priority", "-informativeness", "created_at", "id"],
                condition=Q(status__in=["open", "claimed"]),
                name="task_claim_informative",
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
