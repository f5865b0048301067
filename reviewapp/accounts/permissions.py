"""Who may do what: group names and per-project access checks."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from reviewapp.fastpaths import access
from reviewapp.models import Project

REVIEWERS_GROUP = "reviewers"
ROLLOUT_ADMINS_GROUP = "rollout admins"


def is_rollout_admin(user) -> bool:
    """Rollout admins (and superusers) manage every project."""
    return user.is_authenticated and user.has_perm("reviewapp.manage_rollout")


def visible_projects(user) -> QuerySet[Project]:
    """Projects whose queue and items the user may see."""
    if is_rollout_admin(user):
        return Project.objects.all()
    if not user.has_perm("reviewapp.review_items"):
        return Project.objects.none()
    return Project.objects.filter(reviewers=user)


def require_project_access(user, project: Project, *, is_reviewer: bool | None = None) -> None:
    """Raise PermissionDenied, saying what is missing, unless the user may review the project.

    ``is_reviewer``: the project's reviewer membership when the caller has already read it.
    """
    if is_rollout_admin(user):
        return
    if not user.has_perm("reviewapp.review_items"):
        raise PermissionDenied(
            "You need the reviewer role (group 'reviewers') to see review queues. "
            "Ask a rollout admin to add you."
        )
    if is_reviewer is None:
        is_reviewer = project.reviewers.filter(pk=user.pk).exists()
    if not is_reviewer:
        raise PermissionDenied(
            f"You are not a reviewer of the project '{project.name}'. "
            "Ask a rollout admin to add you to its reviewers."
        )


def project_for(user, slug: str) -> Project:
    """The project with this slug (404 when unknown), if the user may review it (else 403).

    Read in one statement where reviewapp.fastpaths.access can; else by the ORM and the backends.
    """
    project = access.project_with_access(user, slug)
    if project is None:  # not the common case: the stock path
        project = get_object_or_404(Project, slug=slug)
        require_project_access(user, project)
        return project
    if project.pk is None:  # no such project
        raise Http404("No project with this name.")
    require_project_access(user, project, is_reviewer=bool(project.access_is_reviewer))
    return project


def require_upload(user, project: Project) -> None:
    """Raise PermissionDenied unless the user may upload items to the project."""
    require_project_access(user, project)
    if not user.has_perm("reviewapp.upload_items"):
        raise PermissionDenied("You need the permission 'Can upload items' to add images.")


def require_training(user, project: Project) -> None:
    """Raise PermissionDenied unless the user may start, cancel, retry and promote training."""
    if not (user.is_authenticated and user.has_perm("reviewapp.trigger_training")):
        raise PermissionDenied(
            f"Retraining {project.name} needs the permission 'Can start and cancel training runs' "
            "(group 'rollout admins')."
        )


def require_relabel(user, project: Project) -> None:
    """Raise PermissionDenied unless the user may overwrite a stored label (rollout admins)."""
    require_project_access(user, project)
    if not is_rollout_admin(user):
        raise PermissionDenied(
            f"Fixing a stored label of {project.name} overrides reviewers' decisions: only "
            "rollout admins may do it (group 'rollout admins')."
        )
