"""The pieces the fault tests rely on, in-process: the item outbox, the sweeper, media
staging and check, and the outage error pages (tests/resilience injects the real faults)."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from django.test import RequestFactory
from django.utils import timezone

from reviewapp import tasks
from reviewapp.intake import media, outbox, services
from reviewapp.models import Item, ItemOrigin
from reviewapp.site.errors import server_error
from tests.factories import ProjectFactory, png_bytes

pytestmark = pytest.mark.django_db


def test_ingest_makes_an_item_its_own_outbox_entry_until_predicted(champion_project):
    item, _ = services.item_ingest(
        project=champion_project, data=png_bytes(3), enqueue_prediction=False
    )
    assert item.prediction_due_at is not None
    assert tasks.predict_item.run(item.pk) == "predicted"
    item.refresh_from_db()
    assert item.prediction_due_at is None


def test_base_set_items_are_never_due():
    item, _ = services.item_ingest(
        project=ProjectFactory(), data=png_bytes(4), origin=ItemOrigin.BASE, base_label="1"
    )
    assert item.prediction_due_at is None


def test_sweeper_sends_only_overdue_items_and_pushes_them_back():
    from config.celery import app

    project = ProjectFactory()
    overdue, _ = services.item_ingest(project=project, data=png_bytes(5), enqueue_prediction=False)
    later, _ = services.item_ingest(project=project, data=png_bytes(6), enqueue_prediction=False)
    Item.objects.filter(pk=overdue.pk).update(prediction_due_at=timezone.now() - timedelta(1))
    try:
        assert outbox.predictions_sweep() == 1
    finally:
        app.control.purge()
    overdue.refresh_from_db()
    assert overdue.prediction_due_at > timezone.now() + timedelta(seconds=60)
    assert outbox.predictions_sweep() == 0  # nothing is due any more


def test_a_failed_publish_or_insert_removes_what_was_written(media_dir):
    staged = media.media_stage(name="items/x/ab/abc.png", data=b"data")
    assert staged.temp.exists() and not staged.final.exists()
    staged.publish()
    assert staged.final.read_bytes() == b"data"
    staged.discard()  # what item_ingest does when its transaction fails
    assert not staged.final.exists() and list((media_dir / "items/x").rglob("*.part")) == []


def test_an_outer_rollback_leaves_only_an_orphan_for_check_media(media_dir):
    project = ProjectFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        item, _ = services.item_ingest(project=project, data=png_bytes(7), enqueue_prediction=False)
        name = item.image.name
        raise RuntimeError("the caller's transaction fails after the ingest")
    assert not Item.objects.filter(project=project).exists()
    assert name in media.media_check(min_age_seconds=0).orphan_files


def test_check_media_finds_and_repairs_leftovers(media_dir):
    project = ProjectFactory()
    item, _ = services.item_ingest(project=project, data=png_bytes(8), enqueue_prediction=False)
    folder = media_dir / "items" / str(project.pk) / "zz"
    folder.mkdir(parents=True)
    temp, orphan = folder / ".zz.png.1.part", folder / "zz.png"
    temp.write_bytes(b"half")
    orphan.write_bytes(b"no row")
    old = time.time() - 7200
    for path in (temp, orphan):
        os.utime(path, (old, old))
    report = media.media_check()
    assert len(report.temp_files) == 1 and len(report.orphan_files) == 1
    assert report.missing_files == []
    assert media.media_check(repair=True).repaired == 2
    assert not temp.exists() and not orphan.exists() and (media_dir / item.image.name).exists()
    (media_dir / item.image.name).unlink()
    assert media.media_check().missing_files == [(item.pk, item.image.name)]


@pytest.mark.parametrize("path", ["/api/v1/projects/", "/projects/x/"])
def test_a_database_outage_is_a_503_not_a_500(path):
    request = RequestFactory().get(path)
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503 and response["Retry-After"] == "30"
    if path.startswith("/api/"):
        assert json.loads(response.content)["error"]["code"] == "unavailable"
    else:
        assert b"Temporarily unavailable" in response.content


def test_full_media_is_a_507_with_the_reason():
    request = RequestFactory().post("/api/v1/projects/x/items/")
    try:
        raise media.StorageUnavailable(OSError(28, "No space left on device"))
    except media.StorageUnavailable:
        response = server_error(request)
    assert response.status_code == 507
    assert "disk is full" in json.loads(response.content)["error"]["message"]


def test_sweeper_task_name_is_pinned_and_scheduled_by_beat_setup():
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    assert tasks.sweep_predictions.name == "reviewapp.sweep_predictions"
    call_command("beat_setup", "--prediction-seconds", "45")
    entry = PeriodicTask.objects.get(task="reviewapp.sweep_predictions")
    assert entry.enabled and entry.interval.every == 45
