"""gunicorn SIGKILLed while uploads stream in: no row without its file, no partial file under
a final name, and `manage.py check_media --repair` removes what the crash left behind."""

from __future__ import annotations

import hashlib
import random
import threading
import time

import numpy as np
from PIL import Image

from bench.harness.client import Http
from bench.harness.processes import wait_until

ROUNDS = 2


def _noise_png(seed: int, side: int = 900) -> bytes:
    """A large PNG that does not compress (so the write and fsync take a while)."""
    import io

    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def _uploader(port, token, slug, images, accepted, stop) -> None:
    http = Http(port, token=token)
    while not stop.is_set() and images:
        key, data = images.pop()
        try:
            status, body = http.submit(slug, data, key=key)
        except OSError:
            return  # the server died under us
        if status in (201, 202):
            accepted[key] = body["id"]


def _warm_up(port: int, token: str) -> None:
    """One request per gunicorn worker, so the kill lands during uploads, not imports."""

    def get() -> None:
        Http(port, token=token).request("GET", "/api/v1/projects/")

    threads = [threading.Thread(target=get) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def _wait_for_accepted(accepted: dict, count: int) -> None:
    wait_until(lambda: len(accepted) >= count, timeout=120, what=f"{count} accepted uploads")


def _wait_for_temp_file(stack, *, seconds: float) -> int:
    """Poll media for a `.part` file for up to `seconds`; 1 when one was seen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any((stack.media / "items").rglob(".*.part")):
            return 1
        time.sleep(0.001)
    return 0


def _media_files(stack) -> list:
    return [p for p in (stack.media / "items").rglob("*") if p.is_file()]


def test_web_killed_during_uploads_leaves_no_partial_state(stack, artifact_spec):
    seeded = stack.seed({"artifact": artifact_spec})
    images = [(f"big-{n}", _noise_png(n)) for n in range(60)]
    accepted: dict[str, int] = {}
    rng = random.Random(10)
    caught_mid_write = 0
    for _ in range(ROUNDS):
        web = stack.start_web(workers=2)
        _warm_up(stack.web_port, seeded["token"])
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=_uploader,
                args=(stack.web_port, seeded["token"], seeded["slug"], images, accepted, stop),
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        # Kill the moment an upload is between its temporary file and its rename (or after a
        # random pause when none is caught): SIGKILL to the gunicorn master and its workers.
        _wait_for_accepted(accepted, len(accepted) + 2)
        caught_mid_write += _wait_for_temp_file(stack, seconds=rng.uniform(1.0, 3.0))
        web.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    rows = dict(stack.sql("SELECT image, sha256 FROM reviewapp_item"))
    assert accepted, "no upload was accepted before the kills"
    stored_ids = {r[0] for r in stack.sql("SELECT id FROM reviewapp_item")}
    assert set(accepted.values()) <= stored_ids, "an accepted item was lost"
    for name, sha in rows.items():  # every row has its complete file
        path = stack.media / name
        assert path.exists(), f"row points to a missing file {name}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    for path in _media_files(stack):  # a final name always holds complete content
        if not path.name.startswith("."):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem

    # Leftovers a crash can leave (planted too, so the check is always exercised).
    folder = stack.media / "items" / "1" / "00"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".00dead.png.1234.part").write_bytes(b"half an image")
    (folder / ("00" + "a" * 62 + ".png")).write_bytes(b"a file without a row")
    report = stack.manage("check_media", "--min-age", "0", "--repair")
    assert "temp file (interrupted upload)" in report.stdout
    assert "orphan file (no item row)" in report.stdout
    assert "missing file" not in report.stdout
    remaining = {p.relative_to(stack.media).as_posix() for p in _media_files(stack)}
    assert remaining == set(rows), "after repair media holds exactly the rows' files"
    clean = stack.manage("check_media", "--min-age", "0")
    assert clean.stdout.startswith("0 leftover file(s) found"), clean.stdout
    assert clean.stdout.strip().endswith("0 missing")
    leftovers = report.stdout.count("\n") - 1
    print(f"accepted={len(accepted)} rows={len(rows)} kills mid-write={caught_mid_write}")
    print(f"leftovers repaired={leftovers} (2 planted)")
