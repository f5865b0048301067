"""Who may do what: group names and per-project access checks."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

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
    """The project with this slug (404 when unknown), if the user may review it (else 403)."""
    project = get_object_or_404(Project, slug=slug)
    require_project_access(user, project, is_reviewer=_access_preload(user, project))
    return project


# Reviewer membership and all the user's permissions in one statement; Django's ModelBackend
# takes two queries for the permissions and the ORM spends more CPU compiling these joins than
# the database spends running them (the desk checks access on every decision).
_ACCESS_SQL = """
SELECT 'project', 'reviewer' FROM reviewapp_project_reviewers
WHERE project_id = %(project)s AND user_id = %(user)s
UNION ALL
SELECT ct.app_label, p.codename
FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
WHERE p.id IN (
    SELECT permission_id FROM auth_user_user_permissions WHERE user_id = %(user)s
    UNION
    SELECT gp.permission_id FROM auth_group_permissions gp
    JOIN auth_user_groups ug ON ug.group_id = gp.group_id
    WHERE ug.user_id = %(user)s
)
"""


# Backends that only authenticate and grant no permissions (django-axes's login throttle), so the
# permission cache above is still exactly ModelBackend's.
_NO_PERMISSION_BACKENDS = {"axes.backends.AxesStandaloneBackend"}


def _access_preload(user, project: Project) -> bool | None:
    """Whether the user reviews the project, filling ModelBackend's per-request permission cache.

    None (the caller then asks the ORM) for superusers, inactive or custom users and backends.
    """
    if (
        [b for b in settings.AUTHENTICATION_BACKENDS if b not in _NO_PERMISSION_BACKENDS]
        != ["django.contrib.auth.backends.ModelBackend"]
        or settings.AUTH_USER_MODEL != "auth.User"
        or not user.is_active
        or user.is_superuser
        or hasattr(user, "_perm_cache")
    ):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_ACCESS_SQL, {"project": project.pk, "user": user.pk})
        rows = cursor.fetchall()
    user._perm_cache = {f"{app}.{name}" for app, name in rows if app != "project"}
    return ("project", "reviewer") in rows


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
