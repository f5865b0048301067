"""Streamed exports of a project's labeled data: CSV and JSON manifests, a label/image zip.

Nothing is built in memory: rows come from a database iterator and the zip is written through
a small buffer that is emptied after every image (zipfile supports unseekable streams).
"""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import fields

from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from reviewapp.api.auth import project_for_client
from reviewapp.api.selectors import ExportRow, export_rows
from reviewapp.api.views import ERRORS

MANIFEST_COLUMNS = [f.name for f in fields(ExportRow) if f.name != "image_name"]
CHUNK = 256 * 1024


class _Buffer:
    """A write-only file object whose contents are taken out after each write burst."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data) if not isinstance(data, str) else data.encode())
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _manifest_values(row: ExportRow) -> list:
    return [getattr(row, column) for column in MANIFEST_COLUMNS]


def _coalesce(parts: Iterator[bytes]) -> Iterator[bytes]:
    """Join small pieces into chunks of about CHUNK bytes: one socket write per chunk."""
    size = CHUNK
    pending: list[bytes] = []
    length = 0
    for part in parts:
        pending.append(part)
        length += len(part)
        if length >= size:
            yield b"".join(pending)
            pending, length = [], 0
    if pending:
        yield b"".join(pending)


def csv_stream(rows: Iterator[ExportRow]) -> Iterator[bytes]:
    """The manifest as CSV, in chunks of about 256 KB."""
    buffer = _Buffer()
    writer = csv.writer(buffer)
    writer.writerow(MANIFEST_COLUMNS)

    def lines() -> Iterator[bytes]:
        yield buffer.take()
        for row in rows:
            writer.writerow(_manifest_values(row))
            yield buffer.take()

    return _coalesce(lines())


def json_stream(*, project, rows: Iterator[ExportRow]) -> Iterator[bytes]:
    """The manifest as one JSON object with an `items` array, in chunks of about 256 KB."""

    def pieces() -> Iterator[bytes]:
        head = {"project": project.slug, "labels": project.labels}
        yield json.dumps(head)[:-1].encode() + b', "items": ['
        for index, row in enumerate(rows):
            entry = dict(zip(MANIFEST_COLUMNS, _manifest_values(row), strict=True))
            yield (b"," if index else b"") + json.dumps(entry).encode()
        yield b"]}"

    return _coalesce(pieces())


def zip_stream(*, project, rows: Iterator[ExportRow]) -> Iterator[bytes]:
    """A zip in label/image layout (stored, not deflated: the images are compressed already).

    At most one image and one chunk of output are in memory at a time.
    """

    def pieces() -> Iterator[bytes]:
        buffer = _Buffer()
        with zipfile.ZipFile(buffer, mode="w", compression=zipfile.ZIP_STORED) as archive:
            for row in rows:
                if not row.image_name:  # decided on an edge device: no image on the server
                    continue
                with default_storage.open(row.image_name, "rb") as source:
                    head = source.read(CHUNK + 1)
                    if len(head) <= CHUNK:  # most images: one call, no data descriptor
                        archive.writestr(row.path, head)
                    else:
                        with archive.open(row.path, mode="w", force_zip64=True) as target:
                            target.write(head)
                            yield buffer.take()
                            while chunk := source.read(CHUNK):
                                target.write(chunk)
                                yield buffer.take()
                yield buffer.take()
            archive.writestr("labels.json", json.dumps({"labels": project.labels}))
        yield buffer.take()

    return _coalesce(pieces())


def _stream(iterator: Iterator[bytes], *, content_type: str, filename: str):
    response = StreamingHttpResponse(iterator, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _ExportView(APIView):
    def project(self, request: Request, slug: str):
        return project_for_client(client=request.auth, slug=slug)


class ExportCsvView(_ExportView):
    """The labeled items of a project as a CSV manifest (streamed)."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request: Request, slug: str):
        project = self.project(request, slug)
        rows = export_rows(project=project)
        return _stream(csv_stream(rows), content_type="text/csv", filename=f"{slug}.csv")


class ExportJsonView(_ExportView):
    """The labeled items of a project as a JSON manifest (streamed)."""

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT),
            **ERRORS,
        }
    )
    def get(self, request: Request, slug: str):
        project = self.project(request, slug)
        stream = json_stream(project=project, rows=export_rows(project=project))
        return _stream(stream, content_type="application/json", filename=f"{slug}.json")


class ExportZipView(_ExportView):
    """The labeled images of a project in label/image folders (a streamed zip)."""

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request: Request, slug: str):
        project = self.project(request, slug)
        stream = zip_stream(project=project, rows=export_rows(project=project))
        return _stream(stream, content_type="application/zip", filename=f"{slug}.zip")
