"""Intake pages: the web upload (parse the request, call the ingest service, respond)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from reviewapp.accounts import permissions
from reviewapp.intake import bulk
from reviewapp.intake.forms import UploadForm
from reviewapp.models import ItemOrigin, Project


@require_POST
def project_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Accept one or more images or clips; each bad file is named and nothing of it is stored."""
    project = get_object_or_404(Project, slug=slug)
    permissions.require_upload(request.user, project)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for error in form.errors.get("images", []):
            messages.error(request, error)
        return redirect("project", slug=slug)
    files = [
        bulk.IngestFile(
            name=upload.name,
            read=upload.read,
            source={"uploaded_by": request.user.get_username()},
        )
        for upload in form.cleaned_data["images"]
    ]
    added = 0
    for result in bulk.files_ingest(project=project, origin=ItemOrigin.UPLOAD, files=files):
        if result.refusal is not None:
            messages.error(request, result.refusal)
            continue
        added += int(result.created)
        if not result.created:
            messages.info(request, f"{result.file.name}: already in the project, not added twice.")
    if added:
        messages.success(request, f"{added} image(s) added; predictions are on their way.")
    return redirect("project", slug=slug)
