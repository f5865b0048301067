"""Who may do what: group names and per-project access checks."""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib.auth.backends import BaseBackend, ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.module_loading import import_string

from reviewapp.fastpaths import rows as sql_rows
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
    project = _project_with_access(user, slug)
    if project is None:  # not the common case: the ORM's two statements
        project = get_object_or_404(Project, slug=slug)
        require_project_access(user, project)
        return project
    if project.pk is None:  # no such project
        raise Http404("No project with this name.")
    require_project_access(user, project, is_reviewer=bool(project.access_is_reviewer))
    return project


# The project, the user's reviewer membership and all the user's permissions in one statement:
# Django's ModelBackend takes two queries for the permissions, and the ORM spends more CPU
# building these than the database spends running them (the desk checks access on every
# decision). The LEFT JOIN from a one-row subquery keeps a row, with a NULL project, for an
# unknown slug. {agg}: the backend's string aggregate (code names hold no comma).
# {project_columns}: the project's columns in field order (reviewapp.sql_rows).
_PROJECT_ACCESS_SQL = """
SELECT {project_columns}, EXISTS (
    SELECT 1 FROM reviewapp_project_reviewers r WHERE r.project_id = p.id AND r.user_id = %(user)s
) AS access_is_reviewer, (
    SELECT COALESCE({agg}(ct.app_label || '.' || perm.codename, ','), '')
    FROM auth_permission perm JOIN django_content_type ct ON ct.id = perm.content_type_id
    WHERE perm.id IN (
        SELECT permission_id FROM auth_user_user_permissions WHERE user_id = %(user)s
        UNION
        SELECT gp.permission_id FROM auth_group_permissions gp
        JOIN auth_user_groups ug ON ug.group_id = gp.group_id
        WHERE ug.user_id = %(user)s
    )
) AS access_perms
FROM (SELECT 1 AS x) AS one LEFT JOIN reviewapp_project p ON p.slug = %(slug)s
"""
_STRING_AGG = {"postgresql": "string_agg", "sqlite": "group_concat"}


@functools.cache
def _only_model_backend_grants(backends: tuple[str, ...]) -> bool:
    """Whether ModelBackend's rules alone grant permissions, so the statement above is what the
    backends know.

    Checked by class, method by method: a backend either keeps ModelBackend's permission methods
    (ModelBackend, or a subclass that changes only how users are loaded) or BaseBackend's empty
    ones (django-axes's login throttle grants nothing); any other backend may grant more.
    """
    model_like = False
    for path in backends:
        backend = import_string(path)
        methods = [getattr(backend, name, None) for name in _PERMISSION_METHODS]
        if methods == [getattr(ModelBackend, name) for name in _PERMISSION_METHODS]:
            model_like = True
        elif any(
            method not in (None, getattr(BaseBackend, name, None))
            for method, name in zip(methods, _PERMISSION_METHODS, strict=True)
        ):
            return False
    return model_like


_PERMISSION_METHODS = (
    "get_user_permissions",
    "get_group_permissions",
    "get_all_permissions",
    "has_perm",
    "has_module_perms",
    "with_perm",
)


def _project_with_access(user, slug: str) -> Project | None:
    """The project read with ``access_is_reviewer`` and ``access_perms`` (its pk None for an
    unknown slug), after filling ModelBackend's per-request permission cache.

    None (the caller then asks the ORM) for superusers, inactive or custom users and backends.
    """
    agg = _STRING_AGG.get(connection.vendor)
    if (
        agg is None
        or settings.AUTH_USER_MODEL != "auth.User"
        or not user.is_active
        or user.is_superuser
        or hasattr(user, "_perm_cache")
        or not _only_model_backend_grants(tuple(settings.AUTHENTICATION_BACKENDS))
    ):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_project_access_sql(connection.vendor), {"user": user.pk, "slug": slug})
        row = cursor.fetchone()
    project = sql_rows.instance(Project, row)
    project.access_is_reviewer, access_perms = row[-2:]
    user._perm_cache = set(access_perms.split(",")) - {""}
    return project


@functools.cache
def _project_access_sql(vendor: str) -> str:
    return _PROJECT_ACCESS_SQL.format(
        agg=_STRING_AGG[vendor], project_columns=sql_rows.columns(Project, "p")
    )


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
