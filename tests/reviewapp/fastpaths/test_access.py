"""reviewapp.fastpaths.access: the one-statement access check decides as the stock path does (the
ORM's project read, the membership query and ModelBackend's permissions), on SQLite and
PostgreSQL."""

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import override_settings
from django.urls import reverse

from reviewapp.accounts import permissions
from reviewapp.fastpaths import access
from tests.factories import (
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PERMS = ("reviewapp.review_items", "reviewapp.upload_items", "reviewapp.manage_rollout")


def _fresh(user):
    """The user as a new request loads it: no permission cache yet."""
    return type(user).objects.get(pk=user.pk)


def _decision(user, slug, monkeypatch, *, stock):
    """What project_for answers (project fields or the refusal) and the user's permissions."""
    user = _fresh(user)
    with monkeypatch.context() as patch:
        if stock:
            patch.setattr(access, "project_with_access", lambda user, slug: None)
        try:
            project = permissions.project_for(user, slug)
            answer = ("ok", {f.attname: getattr(project, f.attname) for f in project._meta.fields})
        except Http404:  # the 404 page does not show the message
            answer = ("Http404", None)
        except PermissionDenied as refused:  # the 403 page shows what is missing
            answer = ("PermissionDenied", str(refused))
    return answer, {perm: user.has_perm(perm) for perm in PERMS}


def _people():
    project = ProjectFactory(labels=["cat", "dög"])
    member, outsider = ReviewerFactory(), ReviewerFactory()
    project.reviewers.add(member)
    uploader = ReviewerFactory()
    uploader.user_permissions.add(Permission.objects.get(codename="upload_items"))
    project.reviewers.add(uploader)
    no_role = UserFactory()
    project.reviewers.add(no_role)
    admin = RolloutAdminFactory()
    return project, [member, outsider, uploader, no_role, admin]


def test_every_decision_matches_the_stock_path(monkeypatch):
    project, people = _people()
    for user in people:
        for slug in (project.slug, "no-such-project"):
            fast = _decision(user, slug, monkeypatch, stock=False)
            stock = _decision(user, slug, monkeypatch, stock=True)
            assert fast == stock, (user.username, slug)
    # the matrix covers each answer
    answers = {_decision(u, project.slug, monkeypatch, stock=False)[0][0] for u in people}
    assert answers == {"ok", "PermissionDenied"}
    assert _decision(people[0], "no-such-project", monkeypatch, stock=False)[0][0] == "Http404"


def test_the_statement_fills_the_permissions_modelbackend_would_grant():
    project, people = _people()
    for user in people:
        fast = _fresh(user)
        read = access.project_with_access(fast, project.slug)
        if read is None:  # a rollout admin is no superuser: the statement answers for them too
            continue
        assert fast._perm_cache == _fresh(user).get_all_permissions()


def test_the_fast_path_answers_in_one_statement(django_assert_num_queries):
    project, (member, *_) = _people()
    user = _fresh(member)
    with django_assert_num_queries(1):
        assert permissions.project_for(user, project.slug).pk == project.pk
        assert user.has_perm("reviewapp.review_items")


class GrantsReviewToEveryone:
    """An extra backend that grants the reviewer permission by itself (e.g. from an LDAP group)."""

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None):
        return perm == "reviewapp.review_items"


@override_settings(
    AUTHENTICATION_BACKENDS=[
        "django.contrib.auth.backends.ModelBackend",
        f"{__name__}.GrantsReviewToEveryone",
    ]
)
def test_a_backend_that_grants_permissions_turns_the_one_statement_check_off(client):
    """The statement knows only ModelBackend's tables: with another granting backend the desk
    must ask every backend, or this user (no group, granted by the extra backend) is refused."""
    project = ProjectFactory()
    ReviewTaskFactory(prediction__item__project=project)
    user = UserFactory()
    project.reviewers.add(user)
    assert access.project_with_access(_fresh(user), project.slug) is None
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(reverse("desk-next", args=[project.slug])).status_code == 200


def test_desk_answers_404_for_an_unknown_project_and_403_for_a_non_reviewer(client):
    project = ProjectFactory()
    ReviewTaskFactory(prediction__item__project=project)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    assert client.get(reverse("desk-next", args=[project.slug])).status_code == 200
    assert client.get(reverse("desk-next", args=["no-such-project"])).status_code == 404
    other = ProjectFactory()
    response = client.get(reverse("desk-next", args=[other.slug]))
    assert response.status_code == 403
    assert other.name in response.content.decode()
