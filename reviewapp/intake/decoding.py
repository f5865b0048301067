"""Decoding a prediction batch's images: an item's image or a clip's sampled frames; large ones
on a thread pool (HANDOFF_PREDICT_DECODE_THREADS), small ones on the caller's thread meanwhile.

Where the pool pays depends on the image: a photo's decode runs for milliseconds with the GIL
released, a 32-px digit's for ~0.06 ms, less than the hop to the pool and back. Measured on 256
digits (32 px, PostgreSQL host, 2026-12-07): 0.17-0.24 ms per item on the pool, 0.09 ms inline.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.files.storage import default_storage

from reviewapp import ml
from reviewapp.models import Item

logger = logging.getLogger(__name__)

_DECODER: ThreadPoolExecutor | None = None
_DECODER_LOCK = threading.Lock()


def _decoder() -> ThreadPoolExecutor:
    global _DECODER
    with _DECODER_LOCK:
        if _DECODER is None:
            _DECODER = ThreadPoolExecutor(
                max_workers=settings.HANDOFF_PREDICT_DECODE_THREADS,
                thread_name_prefix="predict-decode",
            )
        return _DECODER


def _images_load(item: Item) -> list:
    """An item's images as the model sees them: the image, or a clip's sampled frames."""
    images = []
    for name in item.frame_names or [item.image.name]:
        with default_storage.open(name, "rb") as handle:
            images.append(ml.load_image(handle))
    return images


def _images_load_logged(item: Item) -> list | None:
    try:
        return _images_load(item)
    except (OSError, ml.ImageLoadError) as exc:
        logger.warning("predict_batch.unreadable item=%s error=%s", item.pk, exc)
        return None


# Items with fewer pixels than this (all frames of a clip together) are decoded inline.
INLINE_PIXELS = 128 * 128
# The most pixels a worker holds decoded at once (~300 MB as RGB): a claim of 256 photos of
# 12 megapixels would otherwise be ~9 GB of decoded images before the first forward.
BUDGET_PIXELS = 100_000_000


def _pixels(item: Item) -> int:
    return item.width * item.height * max(1, len(item.frame_names or []))


def parts(items: list[Item], budget: int | None = None) -> list[list[Item]]:
    """The items in order, cut into parts of at most ``budget`` pixels (``BUDGET_PIXELS``); an
    item over the budget on its own is a part of its own."""
    budget = BUDGET_PIXELS if budget is None else budget
    cut: list[list[Item]] = []
    total = budget + 1
    for item in items:
        pixels = _pixels(item)
        if total + pixels > budget:
            cut.append([])
            total = 0
        cut[-1].append(item)
        total += pixels
    return cut


def images_load_all(items: list[Item]) -> dict[int, list]:
    """Decode every item's images; an unreadable item is left out (logged).

    Large items go to the thread pool first; small ones (and a lone item, a `wait` request's)
    are decoded on this thread while the pool works, where a hop would only add a wait.
    """
    pooled = [i for i in items if _pixels(i) >= INLINE_PIXELS] if len(items) > 1 else []
    futures = {item.pk: _decoder().submit(_images_load_logged, item) for item in pooled}
    loaded = {i.pk: _images_load_logged(i) for i in items if i.pk not in futures}
    loaded.update({item_id: future.result() for item_id, future in futures.items()})
    return {i.pk: loaded[i.pk] for i in items if loaded[i.pk] is not None}
