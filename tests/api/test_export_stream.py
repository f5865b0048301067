"""Streamed export (issue 17): chunked responses whose rows and files are right."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest

from reviewapp.api import views_export
from reviewapp.intake import bulk, services
from reviewapp.models import DecidedBy, ItemOrigin
from reviewapp.review.outcomes import outcome_create
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided(api) -> dict[int, str]:
    """120 decided items (item id -> label) and one out-of-domain item, which is left out."""
    entries = [
        bulk.BulkEntry(checked=services.upload_check(project=api.project, data=png_bytes(s)))
        for s in range(121)
    ]
    results = bulk.items_bulk_ingest(
        project=api.project, origin=ItemOrigin.API, entries=entries, enqueue_prediction=False
    )
    labels = {}
    for index, (item, _) in enumerate(results[:120]):
        labels[item.pk] = api.project.labels[index % 3]
        outcome_create(item_id=item.pk, label=labels[item.pk], decided_by=DecidedBy.HUMAN)
    outcome_create(
        item_id=results[120][0].pk, label="", decided_by=DecidedBy.HUMAN, is_out_of_domain=True
    )
    return labels


def _chunks(response) -> list[bytes]:
    assert response.status_code == 200 and response.streaming
    return list(response.streaming_content)


def test_the_manifests_stream_in_chunks_with_the_right_rows(api, decided, monkeypatch):
    monkeypatch.setattr(views_export, "CHUNK", 2048)  # small chunks: many of them
    base = f"/api/v1/projects/{api.project.slug}/export"
    chunks = _chunks(api.get(f"{base}/manifest.json"))
    assert len(chunks) > 3 and max(len(c) for c in chunks[:-1]) < 2048 + 400
    manifest = json.loads(b"".join(chunks))
    assert {row["item_id"]: row["label"] for row in manifest["items"]} == decided
    row = manifest["items"][0]
    assert row["path"] == f"{row['label']}/{row['sha256']}.png" and row["decided_by"] == "human"
    chunks = _chunks(api.get(f"{base}/manifest.csv"))
    assert len(chunks) > 3
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert {int(r["item_id"]): r["label"] for r in rows} == decided


@pytest.mark.parametrize("chunk", [64, 4096], ids=["images-in-pieces", "images-whole"])
def test_the_images_zip_streams_every_decided_image(api, decided, monkeypatch, chunk):
    monkeypatch.setattr(views_export, "CHUNK", chunk)
    chunks = _chunks(api.get(f"/api/v1/projects/{api.project.slug}/export/images.zip"))
    assert len(chunks) > 3
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    names = [n for n in archive.namelist() if n != "labels.json"]
    assert len(names) == len(decided) == 120
    assert {n.split("/")[0] for n in names} == set(api.project.labels)
    assert json.loads(archive.read("labels.json")) == {"labels": api.project.labels}
    first = min(decided)
    sha = next(r for r in names if r.startswith(decided[first] + "/"))
    assert archive.read(sha) == png_bytes(0)
