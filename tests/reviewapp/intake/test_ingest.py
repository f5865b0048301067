"""Ingest: images are validated fully, stored once, and bad input changes nothing."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from PIL import Image

from reviewapp.intake import services
from reviewapp.models import Item
from tests.factories import ProjectFactory, png_bytes

pytestmark = pytest.mark.django_db


def _media_files(media_dir):
    return sorted(p for p in media_dir.rglob("*") if p.is_file())


def test_same_content_is_stored_once(media_dir):
    project = ProjectFactory()
    first, created = services.item_ingest(
        project=project, data=png_bytes(1), enqueue_prediction=False
    )
    again, created_again = services.item_ingest(
        project=project, data=png_bytes(1), enqueue_prediction=False
    )
    assert created and not created_again
    assert first.pk == again.pk
    assert Item.objects.filter(project=project).count() == 1
    assert first.key == first.sha256
    assert first.image.path.endswith(f"{first.sha256}.png")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is plain text, not an image", "not an image"),
        (png_bytes(5)[:60], "image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "not an image"),
    ],
    ids=["empty", "text", "truncated-png", "svg"],
)
def test_bad_uploads_are_refused_and_store_nothing(data, message, media_dir):
    project = ProjectFactory()
    before = _media_files(media_dir)
    with pytest.raises(ValidationError, match=message):
        services.item_ingest(project=project, data=data, original_filename="evil.png")
    assert Item.objects.count() == 0
    assert _media_files(media_dir) == before


def test_absurd_dimensions_are_refused():
    buffer = io.BytesIO()
    Image.new("L", (1, 5000)).save(buffer, format="PNG")
    with pytest.raises(ValidationError, match="absurd dimensions"):
        services.item_ingest(project=ProjectFactory(), data=buffer.getvalue())
    assert Item.objects.count() == 0


def test_client_key_is_idempotent_and_conflicts_on_other_content():
    project = ProjectFactory()
    item, _ = services.item_ingest(
        project=project, data=png_bytes(2), client_key="cam-1/0001", enqueue_prediction=False
    )
    same, created = services.item_ingest(
        project=project, data=png_bytes(2), client_key="cam-1/0001", enqueue_prediction=False
    )
    assert same.pk == item.pk and not created
    with pytest.raises(services.IdempotencyConflict):
        services.item_ingest(project=project, data=png_bytes(3), client_key="cam-1/0001")
    assert Item.objects.count() == 1


def test_unknown_base_label_is_refused():
    with pytest.raises(ValidationError, match="not one of"):
        services.item_ingest(project=ProjectFactory(), data=png_bytes(4), base_label="cat")
    assert Item.objects.count() == 0


def test_ingest_folder_adds_images_and_names_refused_files(tmp_path, capsys):
    project = ProjectFactory()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.png").write_bytes(png_bytes(10))
    (tmp_path / "two.png").write_bytes(png_bytes(11))
    (tmp_path / "copy.png").write_bytes(png_bytes(11))
    (tmp_path / "broken.png").write_bytes(b"not really a png")
    call_command("ingest_folder", str(tmp_path), project=project.slug)
    out, err = capsys.readouterr()
    assert "4 files: 2 added, 1 already present, 1 refused" in out
    assert "broken.png" in err
    assert Item.objects.filter(project=project).count() == 2


def test_ingest_folder_unknown_project_is_a_clear_error(tmp_path):
    ProjectFactory(slug="known")
    with pytest.raises(CommandError, match="unknown project 'nope' \\(known: known\\)"):
        call_command("ingest_folder", str(tmp_path), project="nope")
