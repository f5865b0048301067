"""The edge endpoint: devices report the decisions they made alone (reviewapp/intake/edge.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from reviewapp.api.auth import project_for_client
from reviewapp.api.serializers import client_key_validator
from reviewapp.api.views import ERRORS, ApiView
from reviewapp.intake import edge
from reviewapp.intake.services import ALLOWED_FORMATS

sha256_validator = RegexValidator(r"^[0-9a-f]{64}$", "A lowercase hex sha256 (64 characters).")


class EdgeDecisionSerializer(serializers.Serializer):
    key = serializers.CharField(validators=[client_key_validator], help_text="The item's key.")
    sha256 = serializers.CharField(validators=[sha256_validator], help_text="sha256 of the image.")
    width = serializers.IntegerField(min_value=1, max_value=100_000)
    height = serializers.IntegerField(min_value=1, max_value=100_000)
    image_format = serializers.ChoiceField(choices=sorted(ALLOWED_FORMATS), default="PNG")
    model_sha256 = serializers.CharField(
        validators=[sha256_validator], help_text="The model version the device ran (its sha256)."
    )
    label = serializers.CharField(max_length=100)
    confidence = serializers.FloatField(min_value=0.0, max_value=1.0)
    ood_score = serializers.FloatField()
    is_ood = serializers.BooleanField(default=False)
    probabilities = serializers.DictField(
        child=serializers.FloatField(min_value=0.0, max_value=1.0), required=False, default=dict
    )
    image_stats = serializers.DictField(
        child=serializers.FloatField(min_value=0.0, max_value=1_000_000.0),
        required=False,
        allow_null=True,
        default=None,
        help_text="The image's statistics (brightness, contrast, ..., width, height), as the "
        "edge runner computes them: the server's domain guard checks them.",
    )

    def validate_image_stats(self, value: dict | None) -> dict | None:
        unknown = sorted(set(value or {}) - set(edge.IMAGE_STAT_NAMES))
        if unknown:
            known = ", ".join(edge.IMAGE_STAT_NAMES)
            raise serializers.ValidationError(
                f"unknown statistics {', '.join(unknown)}; known: {known}"
            )
        return value


class EdgeBatchSerializer(serializers.Serializer):
    decisions = EdgeDecisionSerializer(
        many=True, allow_empty=False, max_length=settings.HANDOFF_API_MAX_BATCH
    )


class EdgeResultSerializer(serializers.Serializer):
    key = serializers.CharField()
    status = serializers.ChoiceField(
        choices=[edge.RECORDED, edge.DUPLICATE, edge.REVIEW, edge.CONFLICT],
        help_text="review: the server would not automate it; upload the image.",
    )
    reason = serializers.CharField(allow_blank=True)
    item_id = serializers.IntegerField(allow_null=True)


class EdgeResultsSerializer(serializers.Serializer):
    results = EdgeResultSerializer(many=True)


class EdgeDecisionsView(ApiView):
    """Record decisions a device made alone; each is re-checked by the server's router."""

    @extend_schema(request=EdgeBatchSerializer, responses={200: EdgeResultsSerializer, **ERRORS})
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_client(client=request.auth, slug=slug)
        form = EdgeBatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        reports = [edge.EdgeReport(**entry) for entry in form.validated_data["decisions"]]
        results = edge.edge_decisions_record(
            client_id=request.auth.pk, project=project, reports=reports
        )
        body = EdgeResultsSerializer({"results": [vars(r) for r in results]}).data
        return Response(body, status=status.HTTP_200_OK)
