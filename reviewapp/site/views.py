"""Pages: parse the request, call one service or selector, respond."""

from __future__ import annotations

import io
import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from reviewapp import ml
from reviewapp.accounts import access, permissions
from reviewapp.intake.forms import UploadForm
from reviewapp.models import Item, Project
from reviewapp.monitoring import dashboard
from reviewapp.review import selectors
from reviewapp.rollout import versions

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "mp4": "video/mp4",
    "webm": "video/webm",
}
PRIVATE_IMAGE_MAX_AGE = 300  # seconds; the desk's prefetch needs only seconds
# Stored as uploaded, but most browsers cannot show them: the desk gets a rendering in a format
# every browser shows (lossless PNG for scans, JPEG for phone photos); ``?original=1`` downloads
# the stored bytes.
BROWSER_RENDERINGS = {"tiff": ("PNG", "image/png", "png"), "heic": ("JPEG", "image/jpeg", "jpg")}


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 page that says what is missing."""
    reason = str(exception) if exception and str(exception) else "You lack a permission."
    return render(request, "403.html", {"reason": reason}, status=403)


def login_locked_out(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out sign-in: 429, who, for how long, what to do."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"username": username, "limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The projects this user can see, with their queues."""
    projects = [
        {"project": p, "queue": sum(selectors.queue_counts(project=p).values())}
        for p in permissions.visible_projects(request.user)
    ]
    return render(request, "reviewapp/home.html", {"projects": projects})


@require_GET
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The project dashboard: stage and gate, quality and operations over time, drift, errors."""
    project = get_object_or_404(Project, slug=slug)
    permissions.require_project_access(request.user, project)
    context = {
        "project": project,
        "champion": versions.champion_of(project),
        "summary": selectors.project_summary(project=project),
        "dash": dashboard.project_dashboard(project=project),
        "outcomes": selectors.recent_outcomes(project=project, limit=10),
        "form": UploadForm(),
        "can_upload": request.user.has_perm("reviewapp.upload_items"),
    }
    return render(request, "reviewapp/project.html", context)


def _item_for(request: HttpRequest, item_id: int) -> Item:
    return access.project_object_get(user=request.user, model=Item, pk=item_id)


@require_GET
def item_image(request: HttpRequest, item_id: int) -> HttpResponse:
    """The stored image, streamed only to users who may see its project (never a public URL).

    ``?still=1`` asks for a picture whatever the item is: a clip answers with its middle sampled
    frame, so thumbnails (dashboard, training, rollout pages) show clips too.
    """
    item = _item_for(request, item_id)
    if request.GET.get("still") and (names := item.frame_names):
        return item_frame(request, item_id=item_id, index=len(names) // 2)
    if not item.image:  # decided on an edge device: the image never left it
        raise Http404("This item was decided on an edge device; its image stayed there.")
    rendering = None if request.GET.get("original") else BROWSER_RENDERINGS.get(item.image_format)
    # The file is content-addressed: same item, same bytes (and the same rendering of them).
    etag = f'"{item.sha256}-{rendering[2]}"' if rendering else f'"{item.sha256}"'
    if (not_modified := get_conditional_response(request, etag=etag)) is not None:
        return _private_image_headers(not_modified, etag=etag)
    try:
        handle = item.image.open("rb")
    except FileNotFoundError:
        raise Http404("The image file is missing from storage.")
    if rendering is not None:
        return _private_image_headers(_rendered(item, handle, rendering), etag=etag)
    response = FileResponse(handle, content_type=CONTENT_TYPES.get(item.image_format))
    response["Content-Disposition"] = f'inline; filename="item-{item.pk}.{item.image_format}"'
    return _private_image_headers(response, etag=etag)


def _rendered(item: Item, handle, rendering: tuple[str, str, str]) -> HttpResponse:
    """The stored TIFF (first page) or HEIC as the model reads it, encoded for a browser."""
    image_format, content_type, extension = rendering
    with handle:
        image = ml.load_image(handle)  # decoded as at ingest: first page, EXIF orientation, RGB
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 92} if image_format == "JPEG" else {}))
    response = HttpResponse(buffer.getvalue(), content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="item-{item.pk}.{extension}"'
    return response


@require_GET
def item_frame(request: HttpRequest, item_id: int, index: int) -> HttpResponse:
    """One sampled frame of a clip (PNG), to the same users as the clip itself."""
    item = _item_for(request, item_id)
    names = item.frame_names
    if index >= len(names):
        raise Http404("This item has no such frame.")
    etag = f'"{item.sha256[:48]}-{index}"'
    if (not_modified := get_conditional_response(request, etag=etag)) is not None:
        return _private_image_headers(not_modified, etag=etag)
    try:
        handle = default_storage.open(names[index], "rb")
    except FileNotFoundError:
        raise Http404("The frame file is missing from storage.")
    response = FileResponse(handle, content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="item-{item.pk}-frame{index}.png"'
    return _private_image_headers(response, etag=etag)


def _private_image_headers(response: HttpResponse, *, etag: str) -> HttpResponse:
    """Browser-only caching, short enough that a reviewer removed from a project loses access."""
    response["ETag"] = etag
    response["Cache-Control"] = f"private, max-age={PRIVATE_IMAGE_MAX_AGE}"
    patch_vary_headers(response, ["Cookie"])
    return response


@require_http_methods(["GET"])
def item_model_view(request: HttpRequest, item_id: int) -> HttpResponse:
    """The image as the champion model saw it (after resize, crop or pad)."""
    item = _item_for(request, item_id)
    champion = versions.champion_of(item.project)
    if champion is None:
        raise Http404("This project has no champion model yet.")
    etag = f'"{item.sha256[:32]}-{champion.sha256[:32]}"'
    if (not_modified := get_conditional_response(request, etag=etag)) is not None:
        return _private_image_headers(not_modified, etag=etag)
    names = item.frame_names  # a clip: its middle sampled frame
    name = names[len(names) // 2] if names else item.image.name
    with default_storage.open(name, "rb") as handle:
        image = ml.load_image(handle)
    view = ml.render_model_view(
        artifact_path=champion.artifact_path, sha256=champion.sha256, image=image
    )
    buffer = io.BytesIO()
    view.save(buffer, format="PNG")
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    return _private_image_headers(response, etag=etag)
