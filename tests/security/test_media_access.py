"""Item images are private: streamed through a permission check, never from a public folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from reviewapp.rollout import versions
from tests.factories import PredictionFactory, ReviewTaskFactory
from tests.security.conftest import ROLES

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_reviewer_of_another_project_gets_neither_image_nor_model_view(world):
    stored = Path(settings.MEDIA_ROOT, world.item_a.image.name).read_bytes()
    for name in ("item-image", "item-model-view"):
        url = reverse(name, args=[world.item_a.pk])
        own = world.client("reviewer_a").get(url)
        assert own.status_code == 200
        foreign = world.client("reviewer_b").get(url)
        assert foreign.status_code == 403
        assert b"\x89PNG" not in foreign.content
    assert b"".join(world.client("reviewer_a").get(reverse("item-image", args=[world.item_a.pk])))
    assert stored.startswith(b"\x89PNG")


def test_the_media_folder_is_not_served_to_anyone(world):
    name = world.item_a.image.name
    paths = [settings.MEDIA_URL + name, "/media/" + name, "/static/" + name, "/" + name]
    for role in ROLES:
        for path in paths:
            response = world.client(role).get(path)
            assert response.status_code in {302, 404}, (role, path, response.status_code)
            assert b"\x89PNG" not in response.content
    assert not Path(settings.MEDIA_ROOT).resolve().is_relative_to((ROOT / "static").resolve())


def test_image_response_is_typed_private_and_revalidated(world):
    url = reverse("item-image", args=[world.item_a.pk])
    response = world.client("reviewer_a").get(url)
    body = b"".join(response.streaming_content)
    assert body == Path(settings.MEDIA_ROOT, world.item_a.image.name).read_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["ETag"] == f'"{world.item_a.sha256}"'
    assert re.fullmatch(r"private, max-age=(\d+)", response["Cache-Control"])
    assert int(response["Cache-Control"].rsplit("=", 1)[1]) <= 300
    assert "Cookie" in response["Vary"]
    # The client's file name ("a.png") never reaches a header: the item id names the file.
    assert response["Content-Disposition"] == f'inline; filename="item-{world.item_a.pk}.png"'


def test_revalidation_checks_permission_before_answering_not_modified(world):
    url = reverse("item-image", args=[world.item_a.pk])
    etag = f'"{world.item_a.sha256}"'
    cached = world.client("reviewer_a").get(url, HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304
    assert cached["Cache-Control"].startswith("private")
    assert world.client("reviewer_b").get(url, HTTP_IF_NONE_MATCH=etag).status_code == 403
    assert world.client("anon").get(url, HTTP_IF_NONE_MATCH=etag).status_code == 302


def test_removing_a_reviewer_from_a_project_stops_image_access_at_once(world):
    url = reverse("item-image", args=[world.item_a.pk])
    reviewer = world.client("reviewer_a")
    assert reviewer.get(url).status_code == 200
    world.project_a.reviewers.remove(world.users["reviewer_a"])
    assert reviewer.get(url).status_code == 403


def test_every_image_url_the_app_builds_goes_through_the_checked_view(world):
    sources = list((ROOT / "templates").rglob("*.html")) + list((ROOT / "static").rglob("*.js"))
    sources += list((ROOT / "reviewapp").rglob("*.py"))
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if re.search(r"MEDIA_URL|\.image\.url|/media/", path.read_text())
    ]
    assert offenders == []


def test_desk_payload_points_at_the_checked_view(world):
    prediction = PredictionFactory(
        item=world.item_a, model_version=versions.champion_of(world.project_a)
    )
    ReviewTaskFactory(prediction=prediction)
    response = world.client("reviewer_a").get(reverse("desk-next", args=[world.project_a.slug]))
    assert response.status_code == 200
    urls = re.findall(r'"(/[^"]*(?:image|model-view)[^"]*)"', response.content.decode())
    assert len(urls) == 2, response.content
    for url in urls:
        assert url.startswith("/items/"), url
        assert world.client("reviewer_b").get(url).status_code == 403


def test_admin_item_page_links_the_checked_view(world):
    url = reverse("admin:reviewapp_item_change", args=[world.item_a.pk])
    page = world.client("superuser").get(url).content.decode()
    assert f'href="{reverse("item-image", args=[world.item_a.pk])}"' in page
    assert world.item_a.image.name not in page
