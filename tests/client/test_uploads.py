"""Projects, uploads of files, folders, PIL images and arrays in batches, keys, and refusals."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from handoff_client import (
    AuthError,
    Client,
    Conflict,
    NotFound,
    RetryPolicy,
    Upload,
    ValidationFailed,
    content_key,
)
from PIL import Image

from reviewapp.api.auth import api_client_create
from reviewapp.models import Item
from tests.factories import ProjectFactory, png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A progress bar that remembers its updates."""

    def __init__(self, total, description) -> None:
        self.total, self.description, self.updates, self.closed = total, description, [], False

    def update(self, n: int) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


def _stored_pixels(item_id: int) -> np.ndarray:
    item = Item.objects.get(pk=item_id)
    with default_storage.open(item.image.name, "rb") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())))


def test_lists_only_the_tokens_projects_with_their_labels(handoff):
    ProjectFactory(slug="someone-elses")
    projects = handoff.client.projects()
    assert [(p.slug, p.labels) for p in projects] == [(handoff.project.slug, ["cat", "dog", "NA"])]
    assert handoff.client.project(handoff.project.slug).name == handoff.project.name
    with pytest.raises(NotFound):
        handoff.client.project("someone-elses")


def test_uploads_a_folder_recursively_in_batches_with_progress(handoff, tmp_path):
    files = {"a.png": png_bytes(1), "sub/b.png": png_bytes(2), "sub/deeper/c.png": png_bytes(3)}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(png_bytes(4))
    bars = []

    def progress(total, description):
        bars.append(Recorder(total, description))
        return bars[-1]

    results = handoff.client.upload_folder(
        handoff.project, tmp_path, batch_size=2, progress=progress
    )

    assert [r.created for r in results] == [True, True, True]
    assert [r.item.sha256 for r in results] == [
        hashlib.sha256(data).hexdigest() for data in files.values()
    ]
    assert bars[0].total == 3 and bars[0].updates == [2, 1] and bars[0].closed
    stored = Item.objects.filter(project=handoff.project).order_by("id")
    assert [item.source["path"] for item in stored] == list(files)
    assert [item.client_key for item in stored] == [content_key(d) for d in files.values()]


def test_folder_keys_by_relative_path_and_labels_from_folders(handoff, tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    (tmp_path / "cat" / "1.png").write_bytes(png_bytes(11))
    (tmp_path / "dog" / "2.png").write_bytes(png_bytes(12))
    results = handoff.client.upload_folder(
        handoff.project,
        tmp_path,
        keys="path",
        key_prefix="trap-7/",
        label_from_folder=True,
        progress=False,
    )
    assert [r.item.key for r in results] == ["trap-7/cat/1.png", "trap-7/dog/2.png"]
    stored = Item.objects.filter(project=handoff.project).order_by("id")
    assert [item.base_label for item in stored] == ["cat", "dog"]


def test_uploads_a_file_a_pil_image_and_arrays_pixel_for_pixel(handoff, tmp_path):
    path = tmp_path / "one.png"
    path.write_bytes(png_bytes(21))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    gray = rng.random((12, 9))
    image = Image.fromarray(rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8))

    results = handoff.client.upload(handoff.project, [path, image, rgb, gray], batch_size=3)

    file_item, image_item, rgb_item, gray_item = (r.item for r in results)
    assert file_item.sha256 == hashlib.sha256(png_bytes(21)).hexdigest()
    assert (image_item.width, image_item.height) == (5, 7)
    assert (rgb_item.width, rgb_item.height) == (30, 20)
    assert np.array_equal(_stored_pixels(image_item.id), np.asarray(image))
    assert np.array_equal(_stored_pixels(rgb_item.id), rgb)
    assert np.array_equal(_stored_pixels(gray_item.id), (gray * 255).round().astype(np.uint8))
    assert Item.objects.filter(project=handoff.project).count() == 4


def test_the_same_upload_again_returns_the_same_items(handoff, tmp_path):
    for seed in range(5):
        (tmp_path / f"{seed}.png").write_bytes(png_bytes(30 + seed))
    first = handoff.client.upload_folder(handoff.project, tmp_path, batch_size=2, progress=False)
    again = handoff.client.upload_folder(handoff.project, tmp_path, batch_size=3, progress=False)
    assert [r.item.id for r in again] == [r.item.id for r in first]
    assert [r.created for r in first] == [True] * 5
    assert [r.created for r in again] == [False] * 5
    assert Item.objects.filter(project=handoff.project).count() == 5
    single = handoff.client.submit(handoff.project, tmp_path / "0.png")
    assert (single.item.id, single.created) == (first[0].item.id, False)


def test_a_key_reused_for_other_content_is_a_conflict(handoff):
    handoff.client.submit(handoff.project, png_bytes(40), key="cam-1/0001")
    with pytest.raises(Conflict) as caught:
        handoff.client.upload(handoff.project, [Upload.from_bytes(png_bytes(41), key="cam-1/0001")])
    assert caught.value.status == 409 and caught.value.code == "conflict"
    assert "'cam-1/0001' was already used for different content" in caught.value.message
    assert Item.objects.filter(project=handoff.project).count() == 1


def test_refusals_carry_the_apis_code_and_message(handoff, live_server):
    bad_label = Upload.from_bytes(png_bytes(50), label="unicorn")
    with pytest.raises(ValidationFailed) as caught:
        handoff.client.upload(handoff.project, [Upload.from_bytes(png_bytes(51)), bad_label])
    assert caught.value.status == 400 and caught.value.code == "invalid"
    assert "item 1" in caught.value.message and "unicorn" in caught.value.message
    assert caught.value.__notes__ == ["in the batch of images 0..1 (from 0)"]
    assert Item.objects.filter(project=handoff.project).count() == 0  # nothing of the batch

    with pytest.raises(NotFound) as caught:
        handoff.client.upload("no-such-project", [png_bytes(52)])
    assert caught.value.code == "not_found" and "no-such-project" in caught.value.message

    with Client(live_server.url, "hnd_wrong", retry=RetryPolicy(attempts=1)) as stranger:
        with pytest.raises(AuthError) as caught:
            stranger.projects()
    assert caught.value.status == 401 and caught.value.code == "authentication_failed"
    assert "Unknown token." in caught.value.message


def test_a_token_sees_nothing_of_another_project(handoff, live_server):
    other = ProjectFactory(labels=["cat"])
    _, token = api_client_create(name="other", projects=[other])
    with Client(live_server.url, token) as foreign:
        mine = handoff.client.submit(handoff.project, png_bytes(60)).item
        with pytest.raises(NotFound):
            foreign.item(mine.id)
