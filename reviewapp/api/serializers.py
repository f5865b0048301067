"""Request validation and response shapes of the API (the schema is generated from these)."""

from __future__ import annotations

import base64
import binascii
import json

from django.conf import settings
from django.core.validators import RegexValidator
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reviewapp.api.selectors import ItemStatus, item_status
from reviewapp.models import DecidedBy, Item, Outcome, Project, Webhook, WebhookDelivery

# Keys name things in clients' systems ("cam-7/2024-05-01T10:00:00/0001"): a safe charset that
# cannot start a spreadsheet formula in the CSV export.
client_key_validator = RegexValidator(
    r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]{0,199}$",
    "Use 1-200 characters from A-Z a-z 0-9 _ . : / @ + - (not starting with a symbol).",
)
MAX_SOURCE_BYTES = 4096


def _check_source(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    if len(json.dumps(value)) > MAX_SOURCE_BYTES:
        raise serializers.ValidationError(f"At most {MAX_SOURCE_BYTES} bytes of JSON.")
    return value


class SourceField(serializers.JSONField):
    """Client metadata about where the image came from (a JSON object, at most 4 KB)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("Malformed JSON.")
        return _check_source(super().to_internal_value(data))


class _SubmitFields(serializers.Serializer):
    key = serializers.CharField(
        required=False,
        allow_blank=False,
        validators=[client_key_validator],
        help_text="Idempotency key: the same key with the same image returns the first item.",
    )
    label = serializers.CharField(
        required=False, max_length=100, help_text="A label the client already knows (optional)."
    )
    source = SourceField(required=False, help_text="Metadata (JSON object, at most 4 KB).")


class ItemSubmitSerializer(_SubmitFields):
    file = serializers.FileField(
        help_text="The image (PNG, JPEG, WEBP, GIF, BMP, TIFF or HEIC/HEIF)."
    )
    wait = serializers.FloatField(
        required=False,
        default=0.0,
        min_value=0.0,
        max_value=settings.HANDOFF_API_MAX_WAIT_SECONDS,
        help_text="Seconds to wait for a synchronous prediction (0: answer at once with 202).",
    )


class Base64ImageField(serializers.CharField):
    """An image sent as base64 text inside JSON."""

    def to_internal_value(self, data) -> bytes:
        text = super().to_internal_value(data)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("Not valid base64.")


class BatchEntrySerializer(_SubmitFields):
    image = Base64ImageField(help_text="The image, base64-encoded.")


BATCH_LIMIT_MESSAGE = (
    f"At most {settings.HANDOFF_API_MAX_BATCH} items per request (HANDOFF_API_MAX_BATCH): "
    "split the batch."
)
PARTIAL_HELP = (
    "false (default): one bad entry stores nothing. true: the good entries are stored and each "
    "bad one is reported in `errors` by its index."
)


class BatchSubmitSerializer(serializers.Serializer):
    """The documented request shape of a batch (entries are checked one by one)."""

    items = BatchEntrySerializer(
        many=True,
        allow_empty=False,
        max_length=settings.HANDOFF_API_MAX_BATCH,
        help_text=f"1 to {settings.HANDOFF_API_MAX_BATCH} images.",
    )
    partial = serializers.BooleanField(required=False, default=False, help_text=PARTIAL_HELP)


class BatchEnvelopeSerializer(serializers.Serializer):
    """A batch's outer shape; each entry then goes through BatchEntrySerializer on its own."""

    items = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        max_length=settings.HANDOFF_API_MAX_BATCH,
        error_messages={"max_length": BATCH_LIMIT_MESSAGE},
    )
    partial = serializers.BooleanField(required=False, default=False)


class OutcomeSerializer(serializers.ModelSerializer):
    decided_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Outcome
        fields = ["label", "is_out_of_domain", "decided_by", "decided_at"]


class ItemStatusSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    received_at = serializers.DateTimeField(source="created_at")
    outcome = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "project",
            "key",
            "client_key",
            "sha256",
            "width",
            "height",
            "status",
            "status_url",
            "received_at",
            "outcome",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=ItemStatus.CHOICES))
    def get_status(self, item: Item) -> str:
        if item.pk in self.context.get("just_created", ()):  # no queries: nothing happened yet
            return ItemStatus.RECEIVED
        routed = self.context.get("routed", {})  # item -> the outcome its route just wrote
        if item.pk in routed:  # no queries: decided by the model, or a review task opened
            return ItemStatus.DECIDED if routed[item.pk] else ItemStatus.WAITING_FOR_REVIEW
        return item_status(item)

    def get_status_url(self, item: Item) -> str:
        path = reverse("api:item", kwargs={"item_id": item.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(OutcomeSerializer(allow_null=True))
    def get_outcome(self, item: Item) -> dict | None:
        if item.pk in self.context.get("just_created", ()):
            return None
        routed = self.context.get("routed", {})
        outcome = routed[item.pk] if item.pk in routed else getattr(item, "outcome", None)
        return OutcomeSerializer(outcome).data if outcome is not None else None


class BatchResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The entry's position in `items` (from 0).")
    created = serializers.BooleanField()
    item = ItemStatusSerializer()


class BatchErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The refused entry's position in `items`.")
    code = serializers.ChoiceField(
        choices=["invalid", "conflict"],
        help_text="invalid: the entry fails validation; conflict: its key names other content.",
    )
    message = serializers.CharField()


class BatchResponseSerializer(serializers.Serializer):
    results = BatchResultSerializer(many=True, help_text="The stored entries, in entry order.")
    errors = BatchErrorSerializer(
        many=True, help_text="The refused entries (only ever non-empty with `partial=true`)."
    )


class FeedOutcomeSerializer(serializers.ModelSerializer):
    item_id = serializers.IntegerField()
    key = serializers.CharField(source="item.key")
    project = serializers.CharField(source="item.project.slug")
    decided_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Outcome
        fields = [
            "id",
            "item_id",
            "key",
            "project",
            "label",
            "is_out_of_domain",
            "decided_by",
            "decided_at",
        ]


class FeedQuerySerializer(serializers.Serializer):
    project = serializers.SlugField(required=False)
    decided_by = serializers.ChoiceField(choices=DecidedBy.choices, required=False)
    label = serializers.CharField(required=False, max_length=100)


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["slug", "name", "description", "labels", "stage", "error_budget", "error_delta"]


class DeliverySerializer(serializers.ModelSerializer):
    outcome_id = serializers.IntegerField(allow_null=True)
    alert_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "event_id",
            "event_type",
            "outcome_id",
            "alert_id",
            "state",
            "attempts",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        ]


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "url", "is_active", "created_at"]
