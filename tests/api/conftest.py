"""API fixtures: a client with a token scoped to one project, image builders for bad input."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image
from rest_framework.test import APIClient

from reviewapp.api.auth import api_client_create
from tests.factories import ProjectFactory


class Api:
    """A token-authenticated HTTP client for one project."""

    def __init__(self, *, project, name: str = "camera-trap-7") -> None:
        self.project = project
        self.client_row, self.token = api_client_create(name=name, projects=[project])
        self.http = APIClient()
        self.http.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")

    def submit(self, data: bytes, *, name: str = "image.png", **fields):
        upload = io.BytesIO(data)
        upload.name = name
        slug = fields.pop("slug", self.project.slug)
        return self.http.post(
            f"/api/v1/projects/{slug}/items/", {"file": upload, **fields}, format="multipart"
        )

    def get(self, path: str, **params):
        return self.http.get(path, params)

    def post_json(self, path: str, body, **extra):
        return self.http.post(path, body, format="json", **extra)


@pytest.fixture(autouse=True)
def _fresh_throttle_history():
    """Throttle counters live in the cache; ids repeat between tests, so start empty."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def api(db) -> Api:
    return Api(project=ProjectFactory(labels=["cat", "dog", "fox"]))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions but carries almost no data (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def image_bytes(size=(16, 16), fmt: str = "PNG", color=(10, 200, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color=color).save(buffer, format=fmt)
    return buffer.getvalue()


def media_files(media_dir) -> list:
    return sorted(p for p in media_dir.rglob("*") if p.is_file())
