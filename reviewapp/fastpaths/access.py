"""The desk's access check in one statement: the project, the user's reviewer membership and all
the user's permissions, instead of the ORM's project read, membership query and ModelBackend's
two permission queries.

The desk checks access on every decision. Measured with bench/review_cost.py (docs/benchmarks.md,
"Fast paths: what each one saves"): switching this off (``--stock access``) costs 3 statements,
~3.0 ms of Python CPU and ~0.25 ms of PostgreSQL CPU more per decision, about half again the
round trip's CPU (~6 ms):

    .venv/bin/python bench/review_cost.py --requests 300 --stock access

``project_with_access`` answers None where the statement may not know what the ORM would
(superusers, inactive or custom users, backends other than ModelBackend that grant permissions,
a database without a string aggregate); reviewapp.accounts.permissions then takes the stock
path. tests/reviewapp/fastpaths/test_access.py compares both paths' decisions.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib.auth.backends import BaseBackend, ModelBackend
from django.db import connection
from django.utils.module_loading import import_string

from reviewapp.fastpaths import rows as sql_rows
from reviewapp.models import Project

# The LEFT JOIN from a one-row subquery keeps a row, with a NULL project, for an unknown slug.
# {agg}: the backend's string aggregate (code names hold no comma). {project_columns}: the
# project's columns in field order (reviewapp.fastpaths.rows).
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

_PERMISSION_METHODS = (
    "get_user_permissions",
    "get_group_permissions",
    "get_all_permissions",
    "has_perm",
    "has_module_perms",
    "with_perm",
)


@functools.cache
def only_model_backend_grants(backends: tuple[str, ...]) -> bool:
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


def project_with_access(user, slug: str) -> Project | None:
    """The project read with ``access_is_reviewer`` and ``access_perms`` (its pk None for an
    unknown slug), after filling ModelBackend's per-request permission cache.

    None (the caller then takes the stock path) for superusers, inactive or custom users and
    backends.
    """
    agg = _STRING_AGG.get(connection.vendor)
    if (
        agg is None
        or settings.AUTH_USER_MODEL != "auth.User"
        or not user.is_active
        or user.is_superuser
        or hasattr(user, "_perm_cache")
        or not only_model_backend_grants(tuple(settings.AUTHENTICATION_BACKENDS))
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
