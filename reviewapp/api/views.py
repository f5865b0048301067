"""API views: parse, call one service or selector, respond (see reviewapp/api/urls.py)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, pagination, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.api import selectors, serializers, submission, timing
from reviewapp.api.auth import project_for_client
from reviewapp.api.errors import Conflict, PayloadTooLarge
from reviewapp.api.uploads import SafeMultiPartParser
from reviewapp.intake import services

ERRORS = {
    code: OpenApiResponse(description=text)
    for code, text in {
        400: "Invalid input",
        401: "Missing, unknown or revoked token",
        404: "Unknown project or item (or not one of the token's)",
        413: "Request too large",
        429: "Throttled",
    }.items()
}


class ApiView(APIView):
    """Base view: refuses oversized requests before reading them."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            raise ValidationError("Content-Length must be a number.")
        if length > settings.HANDOFF_API_MAX_REQUEST_BYTES:
            limit_mb = settings.HANDOFF_API_MAX_REQUEST_BYTES / 1024 / 1024
            raise PayloadTooLarge(f"The request is larger than {limit_mb:.0f} MB.")


def _read_upload(upload) -> bytes:
    if upload.size > settings.HANDOFF_MAX_UPLOAD_BYTES:
        limit_mb = settings.HANDOFF_MAX_UPLOAD_BYTES / 1024 / 1024
        raise PayloadTooLarge(f"{upload.name}: the file is larger than {limit_mb:.0f} MB.")
    return upload.read()


def _validated(request: Request, serializer_class) -> dict:
    """The request's data, checked by ``serializer_class`` (400 with the errors if invalid)."""
    form = serializer_class(data=request.data)
    form.is_valid(raise_exception=True)
    return form.validated_data


def _submission(fields: dict, *, data: bytes, filename: str) -> submission.Submission:
    """One image to submit, with the key, label and source its validated fields carry."""
    return submission.Submission(
        data=data,
        filename=filename,
        key=fields.get("key", ""),
        label=fields.get("label", ""),
        source=fields.get("source") or {},
    )


def _submission_errors(call):
    """Map the services' refusals to 400 and 409."""
    try:
        return call()
    except services.IdempotencyConflict as exc:
        raise Conflict(exc.messages[0])


class ProjectListView(generics.ListAPIView):
    """The projects this token may use, with their label sets."""

    serializer_class = serializers.ProjectSerializer
    pagination_class = None

    def get_queryset(self):
        return self.request.auth.projects.all().order_by("slug")


class ItemSubmitView(ApiView):
    """Submit one image (multipart); optionally wait for the model within a time budget."""

    parser_classes = [SafeMultiPartParser]

    @extend_schema(
        request={"multipart/form-data": serializers.ItemSubmitSerializer},
        responses={
            200: serializers.ItemStatusSerializer,
            201: serializers.ItemStatusSerializer,
            202: serializers.ItemStatusSerializer,
            409: OpenApiResponse(description="Idempotency key reused for another image"),
            **ERRORS,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        watch = timing.Stopwatch()
        with watch.phase("parse"):
            project = project_for_client(client=request.auth, slug=slug)
            fields = _validated(request, serializers.ItemSubmitSerializer)
            upload = fields["file"]
            entry = _submission(fields, data=_read_upload(upload), filename=upload.name or "")
        wait = fields["wait"]

        def store():
            with watch.phase("check"):
                checked = submission.submission_check(project=project, submission=entry)
            with watch.phase("store"):
                return submission.item_submit(
                    client=request.auth,
                    project=project,
                    submission=entry,
                    checked=checked,
                    wait=wait,
                )

        item, created = _submission_errors(store)
        code, context = status.HTTP_200_OK, {"request": request}
        if created:
            answer = submission.item_predict_within(item=item, seconds=wait) if wait else None
            code = status.HTTP_201_CREATED if answer else status.HTTP_202_ACCEPTED
            if answer and (answer.outcome or answer.task):  # the rows just written answer it
                context["routed"] = {item.pk: answer.outcome}
                watch.update(answer.seconds)
            else:
                item.refresh_from_db()
        with watch.phase("answer"):
            body = serializers.ItemStatusSerializer(item, context=context).data
        headers = {"Location": body["status_url"], "Server-Timing": watch.header()}
        return Response(body, status=code, headers=headers)


def _batch_entries(items: list[dict]) -> list[submission.Submission | submission.EntryError]:
    """Each entry parsed on its own (one serializer for all), so a bad one is named by index."""
    entries: list[submission.Submission | submission.EntryError] = []
    form = serializers.BatchEntrySerializer()
    for index, raw in enumerate(items):
        try:
            fields = form.run_validation(raw)
        except ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"entry": exc.detail}
            message = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in detail.items())
            entries.append(submission.EntryError(index, "invalid", message))
            continue
        entries.append(_submission(fields, data=fields["image"], filename=f"items[{index}]"))
    return entries


class BatchSubmitView(ApiView):
    """Submit up to HANDOFF_API_MAX_BATCH images (JSON, base64).

    One bad entry stores nothing, unless `partial` is true: then the good ones are stored and
    each bad one is named in `errors` by its index.
    """

    @extend_schema(
        request=serializers.BatchSubmitSerializer,
        responses={
            202: serializers.BatchResponseSerializer,
            409: OpenApiResponse(description="Idempotency key reused for another image"),
            **ERRORS,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_client(client=request.auth, slug=slug)
        fields = _validated(request, serializers.BatchEnvelopeSerializer)
        entries = _batch_entries(fields["items"])
        result = _submission_errors(
            lambda: submission.batch_submit(
                client=request.auth,
                project=project,
                submissions=entries,
                partial=fields["partial"],
            )
        )
        just_created = {item.pk for _, item, created in result.stored if created}
        context = {"request": request, "just_created": just_created}
        items = serializers.ItemStatusSerializer(  # one serializer: fields built once
            [item for _, item, _ in result.stored], many=True, context=context
        ).data
        body = {
            "results": [
                {"index": index, "created": created, "item": item}
                for (index, _, created), item in zip(result.stored, items, strict=True)
            ],
            "errors": [
                {"index": e.index, "code": e.code, "message": e.message} for e in result.errors
            ],
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ItemStatusView(ApiView):
    """An item's status and, once decided, its final outcome and who decided it."""

    @extend_schema(responses={200: serializers.ItemStatusSerializer, **ERRORS})
    def get(self, request: Request, item_id: int) -> Response:
        item = get_object_or_404(selectors.items_for_client(request.auth), pk=item_id)
        return Response(serializers.ItemStatusSerializer(item, context={"request": request}).data)


class OutcomeCursor(pagination.CursorPagination):
    """Cursor pages by outcome id; `next` is never null, so a polling client can always resume."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_next_link(self) -> str | None:
        if self.has_next or not self.page:
            return super().get_next_link() or self.request.build_absolute_uri()
        position = self._get_position_from_instance(self.page[-1], self.ordering)
        return self.encode_cursor(pagination.Cursor(offset=0, reverse=False, position=position))

    def get_paginated_response_schema(self, schema: dict) -> dict:
        response = super().get_paginated_response_schema(schema)
        response["properties"]["next"]["nullable"] = False
        return response


class OutcomeFeedView(generics.ListAPIView):
    """Final outcomes, oldest first, cursor-paginated: poll `next` to get new ones."""

    serializer_class = serializers.FeedOutcomeSerializer
    pagination_class = OutcomeCursor

    @extend_schema(
        parameters=[serializers.FeedQuerySerializer],
        responses={200: serializers.FeedOutcomeSerializer(many=True), **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = serializers.FeedQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        project = None
        if params.get("project"):
            project = project_for_client(client=self.request.auth, slug=params["project"])
        label = params.get("label", "")
        if label and project is None:
            raise ValidationError({"label": ["Filtering by label needs a project."]})
        if label and label not in project.labels:
            raise ValidationError({"label": [f"{label!r} is not one of {project.labels}"]})
        return selectors.outcomes_feed(
            client=self.request.auth,
            project=project,
            decided_by=params.get("decided_by", ""),
            label=label,
        )


class WebhookListView(generics.ListAPIView):
    """The webhooks an admin registered for this token."""

    serializer_class = serializers.WebhookSerializer
    pagination_class = None

    def get_queryset(self):
        return self.request.auth.webhooks.all()


class WebhookDeliveriesView(generics.ListAPIView):
    """The delivery log of one webhook, newest first (the last 100)."""

    serializer_class = serializers.DeliverySerializer
    pagination_class = None

    @extend_schema(parameters=[OpenApiParameter("webhook_id", int, OpenApiParameter.PATH)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        webhook = self.request.auth.webhooks.filter(pk=self.kwargs["webhook_id"]).first()
        if webhook is None:
            raise NotFound("No such webhook for this token.")
        return webhook.deliveries.order_by("-created_at")[:100]
