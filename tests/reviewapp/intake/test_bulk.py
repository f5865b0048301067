"""Bulk intake (issue 17): a batch per transaction, one outbox entry per item, predictions sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from reviewapp.intake import bulk, media, outbox, services
from reviewapp.models import Item, ItemOrigin, Prediction
from reviewapp.rollout import versions
from tests.api.conftest import media_files
from tests.conftest import wait_for
from tests.factories import ProjectFactory, png_bytes


def _entries(project, seeds) -> list[bulk.BulkEntry]:
    return [
        bulk.BulkEntry(checked=services.upload_check(project=project, data=png_bytes(s)))
        for s in seeds
    ]


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """What was sent: one entry per batch task (the broker call itself is not made)."""
    calls: list[str] = []
    monkeypatch.setattr(outbox, "_send_batch", lambda: calls.append("batch"))
    monkeypatch.setattr(outbox, "_send", lambda item_id: calls.append(f"item {item_id}"))
    return calls


@pytest.mark.django_db
def test_one_outbox_entry_per_new_item_and_one_batch_task_per_batch(
    django_capture_on_commit_callbacks, sent, settings
):
    settings.HANDOFF_PREDICT_BATCH = 2  # 3 new items: two batch tasks drain them
    project = ProjectFactory()
    services.item_ingest(project=project, data=png_bytes(1), enqueue_prediction=False)
    entries = _entries(project, [1, 2, 3, 3, 4])
    with django_capture_on_commit_callbacks(execute=True):
        results = bulk.items_bulk_ingest(project=project, origin=ItemOrigin.API, entries=entries)
    assert [created for _, created in results] == [False, True, True, False, True]
    assert results[2][0].pk == results[3][0].pk
    new = [item.pk for item, created in results if created]
    assert sent == ["batch", "batch"]  # ceil(3 / 2) batch tasks, no message per item
    assert Item.objects.count() == 4
    # The outbox: every new item is due (a worker's batch claim or the sweeper takes it).
    assert Item.objects.filter(pk__in=new, prediction_due_at__isnull=False).count() == 3
    for (item, _), seed in zip(results, [1, 2, 3, 3, 4], strict=True):
        assert Path(item.image.path).read_bytes() == png_bytes(seed)  # content-addressed file


@pytest.mark.django_db
def test_a_single_item_is_sent_as_itself(django_capture_on_commit_callbacks, sent):
    project = ProjectFactory()
    with django_capture_on_commit_callbacks(execute=True):
        results = bulk.items_bulk_ingest(
            project=project, origin=ItemOrigin.API, entries=_entries(project, [7])
        )
    assert sent == [f"item {results[0][0].pk}"]


@pytest.mark.django_db
def test_a_broker_outage_leaves_the_batch_due_now(django_capture_on_commit_callbacks, monkeypatch):
    from kombu.exceptions import OperationalError

    def refuse():
        raise OperationalError("broker down")

    monkeypatch.setattr(outbox, "_send_batch", refuse)
    project = ProjectFactory()
    with django_capture_on_commit_callbacks(execute=True):
        results = bulk.items_bulk_ingest(
            project=project, origin=ItemOrigin.API, entries=_entries(project, range(10, 15))
        )
    assert len(results) == 5
    # Due now: the sweeper re-sends them at its next run.
    assert Item.objects.filter(prediction_due_at__lte=timezone.now()).count() == 5


@pytest.mark.django_db
def test_a_failed_write_stores_nothing_of_the_batch(monkeypatch, media_dir):
    project = ProjectFactory()
    entries = _entries(project, range(20, 26))
    before = media_files(media_dir)
    real_stage, calls = media.media_stage, []

    def flaky_stage(*, name, data):
        calls.append(name)
        if len(calls) == 4:
            raise media.StorageUnavailable(OSError(28, "No space left on device"))
        return real_stage(name=name, data=data)

    monkeypatch.setattr(media, "media_stage", flaky_stage)
    with pytest.raises(media.StorageUnavailable):
        bulk.items_bulk_ingest(project=project, origin=ItemOrigin.API, entries=entries)
    assert Item.objects.count() == 0
    assert media_files(media_dir) == before


@pytest.mark.django_db
def test_ingest_folder_shows_progress_and_works_in_chunks(tmp_path):
    project = ProjectFactory()
    for seed in range(7):
        (tmp_path / f"{seed}.png").write_bytes(png_bytes(30 + seed))
    (tmp_path / "broken.tiff").write_bytes(b"II*\x00 not really a tiff")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "ingest_folder", str(tmp_path), project=project.slug, chunk=3, stdout=out, stderr=err
    )
    assert "8 files: 7 added, 0 already present, 1 refused" in out.getvalue()
    progress = err.getvalue()
    assert "ingest" in progress and "8/8" in progress and "file/s" in progress
    assert "broken.tiff" in progress
    assert Item.objects.filter(project=project, origin=ItemOrigin.FOLDER).count() == 7


@pytest.mark.worker
def test_bulk_ingested_items_are_predicted_by_a_real_worker(
    champion_project, celery_worker, digit_records
):
    entries = [
        bulk.BulkEntry(
            checked=services.upload_check(
                project=champion_project, data=Path(record.path).read_bytes()
            ),
            client_key=record.key,
        )
        for record in digit_records[1700:1706]
    ]
    results = bulk.items_bulk_ingest(
        project=champion_project, origin=ItemOrigin.API, entries=entries
    )
    items = [item for item, _ in results]
    wait_for(
        lambda: Prediction.objects.filter(item__in=items).count() == len(items),
        timeout=90,
        message=f"worker did not predict; log:\n{celery_worker.log_path.read_text()[-3000:]}",
    )
    marked = Item.objects.filter(pk__in=[i.pk for i in items], prediction_due_at__isnull=False)
    wait_for(lambda: not marked.exists(), timeout=30, message="outbox marks not cleared")
    champion = versions.champion_of(champion_project)
    predictions = Prediction.objects.filter(item__in=items)
    assert sorted(predictions.values_list("item_id", flat=True)) == sorted(i.pk for i in items)
    assert set(predictions.values_list("model_version_id", flat=True)) == {champion.pk}
    for item in items:  # routed: decided by the model or waiting in a queue
        assert hasattr(Item.objects.get(pk=item.pk), "outcome") or item.tasks.exists()
