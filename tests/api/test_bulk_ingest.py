"""Bulk ingest through the batch endpoint (issue 17): partial batches, the limit, TIFF and HEIC."""

from __future__ import annotations

import base64
import io
import random
import struct

import pytest
from django.urls import reverse
from PIL import Image

from reviewapp.models import Item
from tests.api.conftest import image_bytes, media_files
from tests.factories import ReviewerFactory, png_bytes

pytestmark = pytest.mark.django_db


def _entry(data: bytes, **extra) -> dict:
    return {"image": base64.b64encode(data).decode(), **extra}


def _batch_url(api) -> str:
    return f"/api/v1/projects/{api.project.slug}/items/batch/"


def _mixed() -> list[dict]:
    return [
        _entry(png_bytes(1), key="good-0"),
        _entry(b"certainly not pixels"),
        _entry(png_bytes(2), label="cat"),
        _entry(png_bytes(3), label="unicorn"),
        {"image": "%%% not base64 %%%"},
        _entry(png_bytes(4) + b"<script>alert(1)</script>"),
        _entry(png_bytes(5)),
    ]


def test_a_mixed_batch_stores_nothing_by_default(api, media_dir):
    before = media_files(media_dir)
    response = api.post_json(_batch_url(api), {"items": _mixed()})
    assert response.status_code == 400, response.content
    message = response.json()["error"]["message"]
    assert "item 1" in message and "item 3" in message and "item 4" in message
    assert Item.objects.count() == 0
    assert media_files(media_dir) == before


def test_a_mixed_batch_with_partial_stores_the_good_and_names_the_bad(api, media_dir):
    before = len(media_files(media_dir))
    response = api.post_json(_batch_url(api), {"items": _mixed(), "partial": True})
    assert response.status_code == 202, response.content
    body = response.json()
    assert [r["index"] for r in body["results"]] == [0, 2, 6]
    assert all(r["created"] and r["item"]["status"] == "received" for r in body["results"])
    errors = {e["index"]: e for e in body["errors"]}
    assert sorted(errors) == [1, 3, 4, 5]
    assert {e["code"] for e in errors.values()} == {"invalid"}
    assert "not an image" in errors[1]["message"]
    assert "unicorn" in errors[3]["message"]
    assert "base64" in errors[4]["message"]
    assert "markup" in errors[5]["message"]
    stored = Item.objects.order_by("pk")
    assert [i.client_key for i in stored] == ["good-0", "", ""]
    assert [i.base_label for i in stored] == ["", "cat", ""]
    assert len(media_files(media_dir)) == before + 3
    assert all(i.prediction_due_at is not None for i in stored)  # each its own outbox entry


def test_partial_names_a_key_conflict_and_stores_the_rest(api):
    api.post_json(_batch_url(api), {"items": [_entry(png_bytes(10), key="cam-1")]})
    body = {
        "items": [_entry(png_bytes(11), key="cam-1"), _entry(png_bytes(12))],
        "partial": True,
    }
    response = api.post_json(_batch_url(api), body)
    assert response.status_code == 202, response.content
    assert response.json()["errors"][0]["index"] == 0
    assert response.json()["errors"][0]["code"] == "conflict"
    assert Item.objects.count() == 2
    del body["partial"]
    assert api.post_json(_batch_url(api), body).status_code == 409  # the default: all or nothing


def test_a_batch_of_200_is_stored_and_replayed_once(api, settings):
    assert settings.HANDOFF_API_MAX_BATCH >= 200
    body = {"items": [_entry(png_bytes(100 + i), key=f"k-{i}") for i in range(200)]}
    response = api.post_json(_batch_url(api), body)
    assert response.status_code == 202, response.content
    assert sum(r["created"] for r in response.json()["results"]) == 200
    assert Item.objects.filter(prediction_due_at__isnull=False).count() == 200
    again = api.post_json(_batch_url(api), body).json()["results"]
    assert not any(r["created"] for r in again)
    assert [r["item"]["client_key"] for r in again] == [f"k-{i}" for i in range(200)]
    assert Item.objects.count() == 200


def test_the_same_image_twice_in_a_batch_is_stored_once(api):
    body = {"items": [_entry(png_bytes(7)), _entry(png_bytes(7))]}
    results = api.post_json(_batch_url(api), body).json()["results"]
    assert [r["created"] for r in results] == [True, False]
    assert results[0]["item"]["id"] == results[1]["item"]["id"]
    assert Item.objects.count() == 1


def test_over_the_limit_names_the_limit(api, settings):
    limit = settings.HANDOFF_API_MAX_BATCH
    body = {"items": [_entry(png_bytes(1))] * (limit + 1)}
    response = api.post_json(_batch_url(api), body)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert f"At most {limit} items" in message and "HANDOFF_API_MAX_BATCH" in message
    assert Item.objects.count() == 0


def _tiff(pages: int = 2) -> bytes:
    buffer = io.BytesIO()
    first, *rest = [Image.new("RGB", (24, 24 + p), (40 * p, 90, 10)) for p in range(pages)]
    first.save(buffer, format="TIFF", save_all=True, append_images=rest)
    return buffer.getvalue()


def _heic() -> bytes:
    return image_bytes((32, 32), "HEIF", color=(200, 30, 90))


def test_tiff_first_page_and_heic_are_accepted(api):
    response = api.submit(_tiff(), name="scan.tiff")
    assert response.status_code == 202, response.content
    tiff = Item.objects.get(pk=response.json()["id"])
    assert (tiff.image_format, tiff.width, tiff.height) == ("tiff", 24, 24)  # the first page
    response = api.submit(_heic(), name="phone.heic")
    assert response.status_code == 202, response.content
    heic = Item.objects.get(pk=response.json()["id"])
    assert (heic.image_format, heic.width, heic.height) == ("heic", 32, 32)
    assert heic.image.name.endswith(".heic") and heic.image.size > 0


def _tiff_header_only(width: int, height: int) -> bytes:
    """A TIFF that declares huge dimensions but carries one byte of pixels (a bomb)."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    tags += [(273, 4, 8 + 2 + 12 * 8 + 4), (278, 4, height), (279, 4, 1)]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        ifd += struct.pack("<HHI", tag, kind, 1) + struct.pack("<I", value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\x00"


HOSTILE = {
    "tiff-bomb": (_tiff_header_only(60000, 60000), "bomb.tiff", "pixels"),
    "tiff-over-own-cap": (_tiff_header_only(8000, 8000), "big.tiff", "too many pixels"),
    "tiff-truncated": (_tiff(1)[:200], "cut.tiff", "image"),
    "heic-truncated": (_heic()[: len(_heic()) // 2], "cut.heic", "not an image"),
    "heic-wrong-magic": (b"\x00\x00\x00\x1cfXyp" + _heic()[8:], "odd.heic", "not an image"),
    "heic-with-markup": (_heic() + b"<script>alert(1)</script>", "x.heic", "markup"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_tiff_and_heic_are_refused(api, media_dir, case):
    data, name, message = HOSTILE[case]
    before = media_files(media_dir)
    response = api.submit(data, name=name)
    assert 400 <= response.status_code < 500, response.content
    assert message in response.json()["error"]["message"].lower()
    batch = api.post_json(_batch_url(api), {"items": [_entry(png_bytes(1)), _entry(data)]})
    assert batch.status_code == 400
    assert Item.objects.count() == 0
    assert media_files(media_dir) == before


def test_a_heic_over_the_pixel_cap_is_refused(api, settings):
    settings.HANDOFF_MAX_IMAGE_PIXELS = 500
    response = api.submit(_heic(), name="phone.heic")
    assert response.status_code == 400
    assert "too many pixels" in response.json()["error"]["message"]


def test_tiff_and_heic_items_are_shown_to_browsers_as_png_and_jpeg(api, client):
    """Browsers cannot show TIFF or HEIC: the image URL renders them; ?original=1 has the bytes."""
    reviewer = ReviewerFactory()
    api.project.reviewers.add(reviewer)
    client.force_login(reviewer)
    for payload, name, content_type, fmt in [
        (_tiff(), "scan.tiff", "image/png", "PNG"),
        (_heic(), "phone.heic", "image/jpeg", "JPEG"),
    ]:
        item = Item.objects.get(pk=api.submit(payload, name=name).json()["id"])
        url = reverse("item-image", args=[item.pk])
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == content_type
        shown = Image.open(io.BytesIO(response.content))
        assert shown.format == fmt and shown.size == (item.width, item.height)
        pixel = shown.convert("RGB").getpixel((1, 1))
        expected = (0, 90, 10) if fmt == "PNG" else (200, 30, 90)  # the first page; the colour
        assert all(abs(a - b) <= 12 for a, b in zip(pixel, expected, strict=True))
        original = client.get(url + "?original=1")
        assert b"".join(original.streaming_content) == item.image.open("rb").read()
        assert response["ETag"] != original["ETag"]


def _big_png(seed: int, side: int = 700) -> bytes:
    """A PNG of noise (incompressible): ~1.4 MB at 700 px."""
    rng = random.Random(seed)
    return image_bytes_of(Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)))


def image_bytes_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_batch_of_several_megabytes_is_stored_and_an_oversized_body_gets_a_json_413(
    api, settings
):
    body = {"items": [_entry(_big_png(n), key=f"big-{n}") for n in range(5)]}  # ~9 MB of JSON
    response = api.post_json(_batch_url(api), body)
    assert response.status_code in (201, 202), response.content[:300]
    assert Item.objects.count() == 5
    # Django's own in-memory cap, if set below the API's: a JSON 413 that says what to do.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    body = {"items": [_entry(_big_png(n), key=f"more-{n}") for n in range(5, 7)]}
    response = api.post_json(_batch_url(api), body)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large" and "HANDOFF_API_MAX_REQUEST_BYTES" in error["message"]
    assert Item.objects.count() == 5  # nothing of the refused batch
