"""Roles: the `reviewers` and `rollout admins` groups and their permissions."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from reviewapp.accounts.permissions import REVIEWERS_GROUP, ROLLOUT_ADMINS_GROUP

REVIEWER_PERMISSIONS = [
    "review_items",
    "view_project",
    "view_item",
    "view_reviewtask",
    "view_decision",
    "add_decision",
    "view_outcome",
    "view_prediction",
]
ROLLOUT_ADMIN_PERMISSIONS = REVIEWER_PERMISSIONS + [
    "manage_rollout",
    "trigger_training",
    "upload_items",
    "change_project",
    "add_project",
    "change_reviewtask",
    "view_modelversion",
    "view_aliasassignment",
    "view_trainingrun",
    "view_rolloutevent",
]


def groups_ensure() -> tuple[Group, Group]:
    """Create or update the two role groups with exactly their permissions."""
    result = []
    for name, codenames in (
        (REVIEWERS_GROUP, REVIEWER_PERMISSIONS),
        (ROLLOUT_ADMINS_GROUP, ROLLOUT_ADMIN_PERMISSIONS),
    ):
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(
            content_type__app_label="reviewapp", codename__in=codenames
        )
        group.permissions.set(perms)
        result.append(group)
    return result[0], result[1]


def groups_ensure_after_migrate(sender, **kwargs) -> None:
    """post_migrate receiver: the role groups exist with their permissions after every migrate."""
    groups_ensure()
