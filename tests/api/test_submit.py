"""Submitting items: accepted once, idempotent, and every bad input is a 4xx that stores nothing."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from reviewapp.api import submission
from reviewapp.models import Item
from tests.api.conftest import Api, image_bytes, media_files, png_header_only
from tests.factories import ProjectFactory, png_bytes


def test_submit_answers_202_with_a_status_url_that_works(api):
    response = api.submit(png_bytes(1), key="cam-7/0001", source='{"camera": "cam-7"}')
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "received" and body["outcome"] is None
    assert body["key"] == "cam-7/0001" and body["project"] == api.project.slug
    assert response["Location"] == body["status_url"]
    status = api.get(body["status_url"])
    assert status.status_code == 200 and status.json()["id"] == body["id"]
    item = Item.objects.get()
    assert item.origin == "api" and item.source["camera"] == "cam-7"
    assert item.source["api_client"] == api.client_row.pk


def test_same_key_same_content_returns_the_original_item(api):
    first = api.submit(png_bytes(2), key="k-1")
    again = api.submit(png_bytes(2), key="k-1")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Item.objects.count() == 1


def test_same_key_other_content_is_a_409_and_stores_nothing(api, media_dir):
    api.submit(png_bytes(3), key="k-2")
    before = media_files(media_dir)
    response = api.submit(png_bytes(4), key="k-2")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "k-2" in response.json()["error"]["message"]
    assert Item.objects.count() == 1
    assert media_files(media_dir) == before


def _truncated_jpeg() -> bytes:
    data = image_bytes((64, 64), "JPEG")
    return data[: len(data) // 2]


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<p>hi</p>")
    return buffer.getvalue()


def _absurd() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (1, 100000)).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_UPLOADS = {
    "not-an-image": (b"just some text, certainly not pixels", "image.png", "not an image"),
    "empty": (b"", "image.png", "empty"),
    "truncated-png": (png_bytes(5)[:70], "image.png", "image"),
    "truncated-jpeg": (_truncated_jpeg(), "photo.jpg", "image"),
    "bomb-pillow": (png_header_only(30000, 30000), "bomb.png", "pixels"),
    "bomb-own-cap": (png_header_only(8000, 8000), "bomb.png", "too many pixels"),
    "svg-named-png": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "image.png",
        "not an image",
    ),
    "html-named-png": (b"<!doctype html><html><body>hi</body></html>", "x.png", "not an image"),
    "polyglot-html": (png_bytes(6) + b"<html><script>alert(1)</script></html>", "p.png", "markup"),
    "polyglot-zip": (png_bytes(7) + _zip_bytes(), "p.png", "follow the end"),
    "absurd-dimensions": (_absurd(), "tall.png", "absurd dimensions"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=list(BAD_UPLOADS))
def test_bad_upload_is_a_clear_4xx_and_stores_nothing(api, media_dir, case):
    data, name, message = BAD_UPLOADS[case]
    before = media_files(media_dir)
    response = api.submit(data, name=name, key="bad-1")
    assert 400 <= response.status_code < 500, response.content
    error = response.json()["error"]
    assert message in error["message"].lower()
    assert Item.objects.count() == 0
    assert media_files(media_dir) == before


def test_a_file_over_the_size_limit_is_a_413(api, settings):
    settings.HANDOFF_MAX_UPLOAD_BYTES = 1000
    response = api.submit(image_bytes((200, 200), "BMP"), name="big.bmp")
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]["message"]
    assert Item.objects.count() == 0


def test_a_request_over_the_request_limit_is_refused_before_parsing(api, settings):
    settings.HANDOFF_API_MAX_REQUEST_BYTES = 2000
    response = api.submit(image_bytes((300, 300), "BMP"), name="big.bmp")
    assert response.status_code == 413
    assert Item.objects.count() == 0


@pytest.mark.parametrize(
    "name", ["../../etc/passwd.png", "..\\..\\boot.png", "/abs/path.png", "a/b.png", "x\x00.png"]
)
def test_a_path_traversal_filename_is_refused(api, media_dir, name):
    # Built by hand: Django's test client would strip the path from the filename itself.
    boundary = "----handoff-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png_bytes(8)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    before = media_files(media_dir)
    response = api.http.generic(
        "POST",
        f"/api/v1/projects/{api.project.slug}/items/",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400, response.content
    assert "unsafe filename" in response.json()["error"]["message"]
    assert Item.objects.count() == 0
    assert media_files(media_dir) == before


def test_an_unknown_project_is_a_404(api):
    response = api.submit(png_bytes(9), slug="no-such-project")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Item.objects.count() == 0


def test_a_token_for_another_project_is_a_404(api):
    other = ProjectFactory()
    response = api.submit(png_bytes(10), slug=other.slug)
    assert response.status_code == 404
    assert Item.objects.count() == 0


def test_a_label_not_in_the_project_is_a_400(api):
    response = api.submit(png_bytes(11), label="unicorn")
    assert response.status_code == 400
    assert "unicorn" in response.json()["error"]["message"]
    assert Item.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"source": "{not json"}, "source"),
        ({"source": "[1, 2]"}, "source"),
        ({"wait": "soon"}, "wait"),
        ({"wait": "-1"}, "wait"),
        ({"wait": "99999"}, "wait"),
        ({"key": "=HYPERLINK(evil)"}, "key"),
        ({"key": "x" * 300}, "key"),
    ],
    ids=[
        "malformed-json",
        "source-not-object",
        "wait-text",
        "wait-negative",
        "wait-huge",
        "key-formula",
        "key-long",
    ],
)
def test_wrong_types_and_malformed_fields_are_400(api, fields, field):
    response = api.submit(png_bytes(12), **fields)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert Item.objects.count() == 0


def test_missing_file_is_400(api):
    response = api.http.post(f"/api/v1/projects/{api.project.slug}/items/", {"key": "k"})
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_json_body_to_the_multipart_endpoint_is_415(api):
    response = api.post_json(f"/api/v1/projects/{api.project.slug}/items/", {"file": "x"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_each_upload_is_decoded_once_on_its_way_in(api, monkeypatch):
    """The API checks an upload fully before storing it; storing does not decode it again."""
    from reviewapp import ml

    decoded = []
    real_load_image = ml.load_image

    def counting_load_image(source):
        decoded.append(1)
        return real_load_image(source)

    monkeypatch.setattr(ml, "load_image", counting_load_image)
    response = api.submit(png_bytes(40), key="once")
    assert response.status_code == 202, response.content
    assert Item.objects.filter(client_key="once").exists()
    assert len(decoded) == 1


def test_wait_without_a_champion_is_accepted_not_finished(api):
    """No model yet: the synchronous attempt returns at once, and the item is still waiting."""
    response = api.submit(png_bytes(41), key="no-model", wait="5")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "received"


@pytest.mark.django_db(transaction=True)
def test_a_wait_request_is_answered_by_the_batcher_without_a_worker(
    champion_project, digit_records
):
    """No Celery worker runs here: the web process's batcher predicts and routes the item."""
    api = Api(project=champion_project)
    batches = submission.wait_batcher().batches
    response = api.submit(Path(digit_records[5].path).read_bytes(), key="batched", wait="20")
    assert response.status_code == 201, response.content
    assert response.json()["status"] in {"decided", "waiting_for_review"}
    assert submission.wait_batcher().batches == batches + 1
    item = Item.objects.get(client_key="batched")
    assert item.prediction_due_at is None and item.predictions.count() == 1
