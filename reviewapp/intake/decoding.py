"""Decoding a prediction batch's images: an item's image or a clip's sampled frames, several
items on a thread pool (HANDOFF_PREDICT_DECODE_THREADS), a lone one on the caller's thread."""

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


def images_load_all(items: list[Item]) -> dict[int, list]:
    """Decode every item's images; an unreadable item is left out (logged).

    Several items are decoded on the thread pool; a lone one (a `wait` request's) on this thread,
    where a hop to the pool would only add a wait.
    """
    pool = map if len(items) == 1 else _decoder().map
    loaded = dict(zip([item.pk for item in items], pool(_images_load_logged, items), strict=True))
    return {item_id: images for item_id, images in loaded.items() if images is not None}
