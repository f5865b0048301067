"""An edge bundle of the session's tiny model, with a policy that exercises every route."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "edge"
POLICY = {
    "project_id": 7,
    "project_slug": "camera-traps",
    "stage": "partial",
    "labels": [str(d) for d in range(10)],
    "confidence_threshold": 0.14,  # the tiny model is barely trained: confidences 0.12-0.18
    "class_thresholds": {"7": 0.16},
    "ood_threshold": None,
    "traffic_share": 0.7,
    "audit_rate": 0.2,
    "priority_labels": ["0"],
    "kill_switch": False,
}
# Run in a fresh interpreter (-I: no PYTHONPATH, no site dir of the user) where importing torch,
# Django, fastai, mlcore or reviewapp raises ImportError; the script then proves they are absent.
BLOCKED = ("torch", "torchvision", "django", "fastai", "mlcore", "reviewapp", "celery")
_PRELUDE = f"""
import sys
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked on the edge: " + name)
        return None
sys.meta_path.insert(0, _Blocker())
sys.path.insert(0, {str(EDGE)!r})
from handoff_edge.cli import main
code = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
assert not leaked, leaked
sys.exit(code)
"""


def edge_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`handoff-edge ARGS` in a subprocess where torch and Django cannot be imported."""
    return subprocess.run(
        [sys.executable, "-I", "-c", _PRELUDE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def edge_bundle(tiny_artifact, digit_records, tmp_path_factory) -> Path:
    """The tiny model exported with mlcore.export (parity on 120 digits)."""
    from mlcore.export import bundle_export

    dest = tmp_path_factory.mktemp("edge") / "bundle"
    images = [r.path for r in digit_records[400:520]]
    bundle_export(artifact_path=tiny_artifact.path, dest=dest, images=images, policy=POLICY)
    return dest


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def field_images(digit_records, tmp_path_factory) -> list[Path]:
    """Unseen digits as they come from the field: PNG, JPEG, wide, gray, dark, and noise."""
    folder = tmp_path_factory.mktemp("field")
    rng = np.random.default_rng(0)
    blobs = []
    for record in digit_records[600:660]:
        blobs.append(Path(record.path).read_bytes())
    for record in digit_records[660:670]:
        img = Image.open(record.path).convert("RGB")
        blobs.append(_png(img, "JPEG"))
        blobs.append(_png(img.resize((64, 32))))
        blobs.append(_png(img.convert("L")))
        blobs.append(_png(Image.eval(img, lambda v: v // 6)))
    for _ in range(10):
        noise = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        blobs.append(_png(Image.fromarray(noise)))
    paths = []
    for i, blob in enumerate(blobs):
        path = folder / f"field-{i:03d}.img"
        path.write_bytes(blob)
        paths.append(path)
    return paths


def decisions_of(result: subprocess.CompletedProcess) -> list[dict]:
    """The JSON lines the runner printed."""
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]
