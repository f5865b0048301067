"""The Fashion-MNIST world of the replay (issue 18, points 7 and 8), without Django: the base
set, the stream with its scheduled phases (a camera change, an out-of-domain burst, a change in
the class mix), the never-streamed test set, and the `--shift module:function` plug-in.

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package (``mlcore.datasets``). The
base set and the stream come from its training file (base first, the stream after it, in file
order), the evaluation set from its test file, so no streamed image was ever trained on.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlcore import datasets, shifts
from mlcore.demo import digit_image, load_digit_arrays

DEFAULT_SHIFT = "bench.replay.fashion_world:camera_change"
OOD_TRUTH = ""  # an out-of-domain item's true label: none (the Outcome's label when "ood")
# (phase, start, end) as fractions of the stream; the class mix changes for good at its start.
PHASES = (
    ("clean", 0.0, 0.25),
    ("camera", 0.25, 0.40),
    ("clean-2", 0.40, 0.50),
    ("ood-burst", 0.50, 0.53),
    ("clean-3", 0.53, 0.60),
    ("class-mix", 0.60, 1.0),
)
# After the mix changes, 85% of items come from the five classes that look alike.
MIX_CLASSES = ("T-shirt/top", "Pullover", "Coat", "Shirt", "Dress")
MIX_SHARE = 0.85


def camera_change(image: Image.Image) -> Image.Image:
    """The default camera change: a darker (45% brightness), lower-resolution (14 px) camera."""
    gray = image.convert("L")
    small = gray.resize((max(1, gray.width // 2), max(1, gray.height // 2)), Image.Resampling.BOX)
    blurry = small.resize(gray.size, Image.Resampling.BILINEAR)
    dark = (np.asarray(blurry, dtype=np.float64) * 0.45).round().astype(np.uint8)
    return Image.fromarray(dark)


def shift_load(spec: str) -> Callable[[Image.Image], Image.Image]:
    """The function named by ``module:function`` (a PIL image in, a PIL image out)."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"--shift wants module:function, got {spec!r}")
    function = getattr(importlib.import_module(module_name), name, None)
    if not callable(function):
        raise ValueError(f"{spec!r}: {module_name} has no function {name!r}")
    return function


@dataclass(frozen=True)
class Entry:
    """One item of the stream: its place in time, its phase, its truth and its PNG file."""

    index: int
    key: str
    label: str  # the true class, OOD_TRUTH for an out-of-domain image
    phase: str
    path: str

    @property
    def shifted(self) -> bool:
        """Whether the camera change is on (the shift the accounting marks)."""
        return self.phase == "camera"

    def image_bytes(self) -> bytes:
        """The PNG the client sends (already transformed when written)."""
        return Path(self.path).read_bytes()


@dataclass(frozen=True)
class Record:
    """A labelled PNG on disk (the shape ``reviewapp.ml`` and ``seeding`` read)."""

    path: str
    label: str
    key: str
    group: str = ""


@dataclass(frozen=True)
class Split:
    """The base set (champion v1 and retraining), the stream, the never-streamed test set."""

    base: list[Record]
    stream: list[Entry]
    evaluation: list[Record]


def phase_at(index: int, total: int) -> str:
    """The scheduled phase of stream position `index`."""
    for name, start, end in PHASES:
        if round(start * total) <= index < round(end * total):
            return name
    return PHASES[-1][0]


def phase_bounds(total: int) -> dict[str, tuple[int, int]]:
    """Each phase's [start, end) stream positions."""
    return {name: (round(start * total), round(end * total)) for name, start, end in PHASES}


def ood_images(n: int, *, seed: int) -> list[Image.Image]:
    """`n` out-of-domain 28×28 grayscale images: scikit-learn's handwritten digits and crops of
    its sample photographs, alternately."""
    digits = load_digit_arrays()[0]
    photos = shifts.far_ood_images(max(1, n // 2), seed=seed)
    out = []
    for i in range(n):
        source = digit_image(digits[(seed + i) % len(digits)]) if i % 2 == 0 else photos[i // 2]
        out.append(source.convert("L").resize((28, 28), Image.Resampling.BILINEAR))
    return out


def _save(image: Image.Image, path: Path) -> str:
    if not path.exists():
        image.save(path, format="PNG")
    return str(path)


def _records(data: datasets.LabelledImages, folder: Path, prefix: str, start: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        Record(path=_save(img, folder / f"{prefix}{start + i}.png"), label=lab, key=f"{prefix}{i}")
        for i, (img, lab) in enumerate(zip(data.images, data.labels, strict=True))
    ]


def _ordered_pool(pool: list[Record], total: int, rng: random.Random) -> list[Record]:
    """The stream's sources in time order: file order, then the changed class mix."""
    mix_start = phase_bounds(total)["class-mix"][0]
    head, rest = pool[:mix_start], pool[mix_start:]
    hard = [r for r in rest if r.label in MIX_CLASSES]
    easy = [r for r in rest if r.label not in MIX_CLASSES]
    tail = []
    while len(head) + len(tail) < total and (hard or easy):
        pick_hard = (rng.random() < MIX_SHARE and hard) or not easy
        tail.append((hard if pick_hard else easy).pop(0))
    return head + tail


def fashion_split(
    *,
    var_dir: Path,
    base: int,
    stream: int,
    evaluation: int,
    shift: Callable[[Image.Image], Image.Image],
    seed: int = 9,
) -> Split:
    """Render the world's PNGs under `var_dir` and plan the stream (deterministic per seed)."""
    folder = var_dir / "fashion"
    train = datasets.fashion_mnist("train", limit=base + 2 * stream)
    base_records = _records(
        datasets.LabelledImages(train.images[:base], train.labels[:base], train.classes),
        folder / "base",
        "fm-",
        0,
    )
    pool = [
        Record(path="", label=lab, key=f"fm-{base + i}")
        for i, lab in enumerate(train.labels[base:])
    ]
    rng = random.Random(seed)
    ordered = _ordered_pool(pool, stream, rng)
    bounds = phase_bounds(stream)
    ood_start, ood_end = bounds["ood-burst"]
    odd = iter(ood_images(ood_end - ood_start, seed=seed))
    (folder / "stream").mkdir(parents=True, exist_ok=True)
    entries, sources = [], iter(ordered)
    for index in range(stream):
        phase = phase_at(index, stream)
        if phase == "ood-burst":
            key, label, image = f"ood-{seed}-{index}", OOD_TRUTH, next(odd)
        else:
            record = next(sources)
            number = int(record.key.removeprefix("fm-"))
            key, label, image = record.key, record.label, train.images[number]
            if phase == "camera":
                key, image = f"{key}-camera", shift(image)
        path = _save(image, folder / "stream" / f"{key}.png")
        entries.append(Entry(index=index, key=key, label=label, phase=phase, path=path))
    test = datasets.fashion_mnist("test", limit=evaluation)
    return Split(
        base=base_records,
        stream=entries,
        evaluation=_records(test, folder / "test", "fm-test-", 0),
    )
