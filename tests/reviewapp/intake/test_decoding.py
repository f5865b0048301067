"""Decoding a batch's images (issue 17): large images on the decode pool, small ones on the
caller's thread meanwhile (a 32-px digit decodes faster than a hop to the pool), a lone item
inline; every readable item comes back as it was stored, an unreadable one is left out."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reviewapp.intake import decoding, services
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def decoded_on(monkeypatch) -> dict[int, str]:
    """Which thread decoded each item."""
    seen: dict[int, str] = {}
    real = decoding._images_load

    def recording(item):
        seen[item.pk] = threading.current_thread().name
        return real(item)

    monkeypatch.setattr(decoding, "_images_load", recording)
    return seen


def _stored(project, seed: int, size: int):
    item, _ = services.item_ingest(
        project=project, data=png_bytes(seed, size=size), enqueue_prediction=False
    )
    return item


def test_large_images_go_to_the_pool_and_small_ones_stay_on_this_thread(
    champion_project, decoded_on
):
    small = [_stored(champion_project, seed, 32) for seed in range(3)]
    large = [_stored(champion_project, 10 + seed, 160) for seed in range(2)]
    broken = _stored(champion_project, 20, 32)
    Path(broken.image.path).write_bytes(b"not an image any more")
    items = [large[0], *small, broken, large[1]]
    loaded = decoding.images_load_all(items)
    assert list(loaded) == [large[0].pk, *(i.pk for i in small), large[1].pk]
    assert {pk: [image.size for image in images] for pk, images in loaded.items()} == {
        **{i.pk: [(32, 32)] for i in small},
        **{i.pk: [(160, 160)] for i in large},
    }
    here = threading.current_thread().name
    assert {decoded_on[i.pk] for i in [*small, broken]} == {here}
    assert all(decoded_on[i.pk].startswith("predict-decode") for i in large)
    assert 160 * 160 >= decoding.INLINE_PIXELS > 32 * 32


def test_a_lone_item_is_decoded_on_this_thread_whatever_its_size(champion_project, decoded_on):
    item = _stored(champion_project, 30, 160)
    assert [image.size for image in decoding.images_load_all([item])[item.pk]] == [(160, 160)]
    assert decoded_on[item.pk] == threading.current_thread().name


def test_a_batch_is_cut_into_parts_under_the_pixel_budget():
    from reviewapp.models import Item

    sizes = [(100, 100), (100, 100), (300, 300), (50, 50), (50, 50), (100, 100)]
    items = [Item(pk=n, width=w, height=h) for n, (w, h) in enumerate(sizes, start=1)]
    cut = decoding.parts(items, budget=25_000)
    # in order; the 90,000-pixel item alone, over the budget; the rest up to 25,000 a part
    assert [[i.pk for i in part] for part in cut] == [[1, 2], [3], [4, 5, 6]]
    assert decoding.parts(items, budget=10**9) == [items]
    assert decoding.parts([]) == []


def test_a_batch_of_large_images_is_predicted_part_by_part(champion_project, monkeypatch):
    """A worker never holds more than the budget decoded: each part is decoded and predicted
    before the next is read, and every item still gets its one prediction."""
    from reviewapp.intake import batching
    from reviewapp.models import Prediction

    items = [_stored(champion_project, 40 + seed, 160) for seed in range(5)]
    monkeypatch.setattr(decoding, "BUDGET_PIXELS", 2 * 160 * 160)
    calls = []
    real = decoding.images_load_all
    monkeypatch.setattr(
        decoding, "images_load_all", lambda part: calls.append([i.pk for i in part]) or real(part)
    )
    report = batching.items_predict(item_ids=[i.pk for i in items])
    assert calls == [[items[0].pk, items[1].pk], [items[2].pk, items[3].pk], [items[4].pk]]
    assert sorted(report.predicted) == sorted(i.pk for i in items)
    assert Prediction.objects.filter(item__in=items).count() == len(items)
    # Redelivered, the batch reuses the stored predictions and reads no image again.
    again = batching.items_predict(item_ids=[i.pk for i in items])
    assert sorted(again.already) == sorted(i.pk for i in items) and again.predicted == []
    assert len(calls) == 3
    assert Prediction.objects.filter(item__in=items).count() == len(items)
