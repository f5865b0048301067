"""The model version page: what the version is, its edge export, and the Export button."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from reviewapp.accounts import permissions
from reviewapp.models import ModelVersion
from reviewapp.training import edge_export


def _version(request: HttpRequest, slug: str, number: int) -> ModelVersion:
    project = permissions.project_for(request.user, slug)
    return get_object_or_404(
        ModelVersion.objects.select_related("project"), project=project, number=number
    )


@require_GET
def version_detail(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """A model version: metadata, metrics and its latest edge export (or refusal)."""
    version = _version(request, slug, number)
    context = {
        "project": version.project,
        "version": version,
        "edge": version.metadata.get(edge_export.EXPORT_KEY),
        "edge_pending": (version.metadata.get(edge_export.EXPORT_KEY) or {}).get("state")
        in edge_export.PENDING_STATES,
        "can_export": request.user.has_perm("reviewapp.trigger_training"),
    }
    return render(request, "reviewapp/model_version.html", context)


@require_POST
def version_export(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Ask a worker to export the version to an ONNX edge bundle; the page shows how it went."""
    version = _version(request, slug, number)
    permissions.require_training(request.user, version.project)
    try:
        edge_export.edge_bundle_export_request(version=version, actor=request.user)
        messages.success(request, "Export queued: this page refreshes until the bundle is ready.")
    except edge_export.EdgeExportBusy as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("model-version", slug=slug, number=number)
