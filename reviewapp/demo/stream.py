"""A stream of real held-out digits, with a domain shift switched on after N items.

The images are scikit-learn digits the demo never trains on nor streams (``demo.HELD_OUT_START``
onwards, 597 images). Ingest is content-addressed (one item per image content per project), so
when a stream needs more items than there are held-out images, each image is re-used with the
item's client key written into a PNG text chunk: the pixels are the same, the bytes (and hash)
differ, and every streamed item is a new item that the worker predicts.
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from reviewapp import ml
from reviewapp.demo import seed as demo
from reviewapp.intake import services
from reviewapp.models import Item, ItemOrigin, Project

logger = logging.getLogger(__name__)

SHIFTS = tuple(ml.STREAM_SHIFTS)


@dataclass
class StreamReport:
    """What a stream did: items created (in order) and which were shifted."""

    item_ids: list[int] = field(default_factory=list)
    shifted: list[bool] = field(default_factory=list)
    reused: int = 0

    @property
    def created(self) -> int:
        """Items created by this stream."""
        return len(self.item_ids)


def held_out_records() -> list[ml.TrainingRecord]:
    """Digits neither in the demo's training set nor in its demo stream."""
    return demo.demo_records()[demo.HELD_OUT_START :]


def stream_png(image: Image.Image, *, client_key: str) -> bytes:
    """PNG bytes of an image, tagged with its client key so each streamed item is unique."""
    info = PngInfo()
    info.add_text("handoff-stream-key", client_key)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def stream_simulate(
    *,
    project: Project,
    shift: str,
    after: int,
    rate: float = 1.0,
    count: int = 600,
    seed: int = 0,
    tag: str = "",
    enqueue_prediction: bool = True,
    on_item: Callable[[Item, bool], bool | None] | None = None,
) -> StreamReport:
    """Ingest `count` held-out digits; from item `after` on, each is shifted with chance `rate`.

    `on_item(item, shifted)` is called for each new item; returning False ends the stream.
    """
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; choose one of {', '.join(SHIFTS)}")
    if not 0.0 <= rate <= 1.0 or after < 0 or count < 1:
        raise ValueError("need 0 <= rate <= 1, after >= 0 and count >= 1")
    records = held_out_records()
    rng = random.Random(seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    report = StreamReport()
    prefix = f"sim-{tag or seed}-{shift}-a{after}-r{rate:g}"
    for index in range(count):
        record = records[order[index % len(order)]]
        shifted = index >= after and rng.random() < rate
        image = ml.load_image(Path(record.path))
        if shifted:
            image = ml.shift_image(image, shift)
        key = f"{prefix}-{index:05d}"
        item, created = services.item_ingest(
            project=project,
            data=stream_png(image, client_key=key),
            origin=ItemOrigin.SIMULATION,
            client_key=key,
            original_filename=f"{key}.png",
            source={"simulation": {"shift": shift if shifted else "", "index": index}},
            enqueue_prediction=enqueue_prediction,
        )
        report.reused += int(index >= len(order))
        if created:
            report.item_ids.append(item.pk)
            report.shifted.append(shifted)
            if on_item is not None and on_item(item, shifted) is False:
                break
    logger.info(
        "simulation.streamed project=%s shift=%s created=%d", project.slug, shift, report.created
    )
    return report
