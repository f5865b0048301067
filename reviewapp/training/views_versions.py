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
        "can_export": request.user.has_perm("reviewapp.trigger_training"),
    }
    return render(request, "reviewapp/model_version.html", context)


@require_POST
def version_export(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Export the version to an ONNX edge bundle; a failed parity check shows its cases."""
    version = _version(request, slug, number)
    permissions.require_training(request.user, version.project)
    try:
        entry = edge_export.edge_bundle_export(version=version, actor=request.user)
        messages.success(request, f"Exported to {entry['path']} (parity passed).")
    except edge_export.EdgeExportRefused as exc:
        messages.error(request, "Export refused: " + " ".join(exc.messages))
    return redirect("model-version", slug=slug, number=number)
