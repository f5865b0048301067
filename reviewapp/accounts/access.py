"""Reads of one object that belongs to a project, for a user who may see that project."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model
from django.shortcuts import get_object_or_404

from reviewapp.accounts import permissions

M = TypeVar("M", bound=Model)


def project_object_get(*, user, model: type[M], pk: int) -> M:
    """The object with this pk, its project read along: 404 if unknown, 403 if not the user's."""
    found = get_object_or_404(model.objects.select_related("project"), pk=pk)
    permissions.require_project_access(user, found.project)
    return found
