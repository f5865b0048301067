"""Status, outcomes feed (cursor polling), exports (streamed), webhooks listing, batch submit."""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile

import pytest

from reviewapp.intake import services
from reviewapp.models import DecidedBy, Item, Outcome
from tests.api.conftest import Api
from tests.factories import ProjectFactory, png_bytes

pytestmark = pytest.mark.django_db


def _decided(api, seed: int, label: str = "cat", by: str = DecidedBy.HUMAN) -> Item:
    item, _ = services.item_ingest(
        project=api.project, data=png_bytes(seed), client_key=f"k-{seed}", enqueue_prediction=False
    )
    Outcome.objects.create(item=item, label=label, decided_by=by)
    return item


def test_status_shows_the_final_outcome_and_who_decided(api):
    item = _decided(api, 1, label="dog", by=DecidedBy.MODEL)
    body = api.get(f"/api/v1/items/{item.pk}/").json()
    assert body["status"] == "decided"
    assert body["outcome"]["label"] == "dog" and body["outcome"]["decided_by"] == "model"


def test_status_of_another_projects_item_is_404(api):
    other = Api(project=ProjectFactory(), name="other")
    item = _decided(other, 2)
    assert api.get(f"/api/v1/items/{item.pk}/").status_code == 404
    assert api.get("/api/v1/items/999999/").status_code == 404


def test_outcomes_feed_pages_by_cursor_and_a_poller_sees_new_outcomes(api):
    for seed in range(5):
        _decided(api, seed + 10)
    seen, url = [], "/api/v1/outcomes/?page_size=2"
    for _ in range(3):
        page = api.get(url).json()
        seen += [row["key"] for row in page["results"]]
        url = page["next"]
    assert seen == [f"k-{seed}" for seed in range(10, 15)]
    assert api.get(url).json()["results"] == []  # caught up: poll the same link later
    _decided(api, 20, label="fox")
    page = api.get(url).json()
    assert [row["key"] for row in page["results"]] == ["k-20"]
    assert page["results"][0]["decided_by"] == "human"


def test_outcomes_feed_filters_and_refuses_bad_filters(api):
    _decided(api, 30, label="cat")
    _decided(api, 31, label="dog")
    slug = api.project.slug
    rows = api.get("/api/v1/outcomes/", project=slug, label="dog").json()["results"]
    assert [row["label"] for row in rows] == ["dog"]
    assert api.get("/api/v1/outcomes/", project=slug, label="unicorn").status_code == 400
    assert api.get("/api/v1/outcomes/", decided_by="robot").status_code == 400
    assert api.get("/api/v1/outcomes/", project="nope").status_code == 404
    assert api.get("/api/v1/outcomes/", cursor="garbage").status_code == 404


def test_exports_stream_the_labeled_data(api):
    cat, dog = _decided(api, 40, label="cat"), _decided(api, 41, label="dog")
    ood, _ = services.item_ingest(project=api.project, data=png_bytes(42), enqueue_prediction=False)
    Outcome.objects.create(item=ood, label="", is_out_of_domain=True, decided_by="human")
    base = f"/api/v1/projects/{api.project.slug}/export"

    response = api.get(f"{base}/manifest.csv")
    assert response.streaming and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {(row["key"], row["label"]) for row in rows} == {("k-40", "cat"), ("k-41", "dog")}

    manifest = json.loads(b"".join(api.get(f"{base}/manifest.json").streaming_content))
    assert manifest["labels"] == ["cat", "dog", "fox"] and len(manifest["items"]) == 2

    response = api.get(f"{base}/images.zip")
    assert response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert f"cat/{cat.sha256}.png" in names and f"dog/{dog.sha256}.png" in names
    assert archive.read(f"cat/{cat.sha256}.png") == png_bytes(40)
    assert not any(name.startswith(("/", "..")) for name in names)


def test_export_of_a_foreign_project_is_404(api):
    other = ProjectFactory()
    assert api.get(f"/api/v1/projects/{other.slug}/export/images.zip").status_code == 404


def _entry(seed: int, **extra) -> dict:
    return {"image": base64.b64encode(png_bytes(seed)).decode(), **extra}


def test_batch_submit_stores_all_and_replays_idempotently(api):
    url = f"/api/v1/projects/{api.project.slug}/items/batch/"
    body = {"items": [_entry(50, key="b-50"), _entry(51, label="cat"), _entry(52)]}
    response = api.post_json(url, body)
    assert response.status_code == 202, response.content
    assert [r["created"] for r in response.json()["results"]] == [True, True, True]
    again = api.post_json(url, body).json()["results"]
    assert [r["created"] for r in again] == [False, False, False]
    assert Item.objects.count() == 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"items": [_entry(60), {"image": base64.b64encode(b"not an image").decode()}]}, 400),
        ({"items": [_entry(61), {"image": "%%% not base64 %%%"}]}, 400),
        ({"items": [_entry(62), _entry(63, label="unicorn")]}, 400),
        ({"items": [_entry(64, key="dup"), _entry(65, key="dup")]}, 409),
        ({"items": "not a list"}, 400),
        ({"items": [{"image": 12345}]}, 400),
        ({"items": []}, 400),
        ([1, 2, 3], 400),
    ],
    ids=[
        "one-bad-image",
        "bad-base64",
        "bad-label",
        "key-twice",
        "not-a-list",
        "wrong-type",
        "empty",
        "not-an-object",
    ],
)
def test_batch_with_any_bad_entry_stores_nothing(api, body, code):
    response = api.post_json(f"/api/v1/projects/{api.project.slug}/items/batch/", body)
    assert response.status_code == code, response.content
    assert "error" in response.json()
    assert Item.objects.count() == 0


def test_batch_malformed_json_is_400(api):
    response = api.http.generic(
        "POST",
        f"/api/v1/projects/{api.project.slug}/items/batch/",
        b'{"items": [',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_batch_over_the_limit_is_400(api, settings):
    body = {"items": [_entry(70 + i) for i in range(settings.HANDOFF_API_MAX_BATCH + 1)]}
    response = api.post_json(f"/api/v1/projects/{api.project.slug}/items/batch/", body)
    assert response.status_code == 400
    assert Item.objects.count() == 0
