"""Streamed export of decided items over HTTP (issue 17): manifest JSON/CSV and the images zip.

gunicorn (one sync worker, so its RSS is the server's) on PostgreSQL serves
`/api/v1/projects/{slug}/export/manifest.json|manifest.csv|images.zip` for N decided items; an
httpx client on the same machine reads each response as a stream. Reported: seconds per download,
the zip's MB/s, and the growth of the worker's RSS (sampled every 20 ms) over its RSS before the
download. Targets (issue 17): manifest JSON <= 2 s for 10,000 items, zip >= 50 MB/s, growth
<= 50 MB.

    .venv/bin/python bench/export_stream.py                  # 10,000 items of ~20 KB
    .venv/bin/python bench/export_stream.py --quick --no-write

Seeding writes the rows with bulk inserts (items, then their outcomes) and the image files
directly: it measures the export, not the way items were decided. Results go to
docs/benchmarks.md between the export-stream markers.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
from PIL import Image

from bench.harness.database import database_arguments, database_prepare, django_setup
from bench.harness.docs import marked_section_write
from bench.harness.machine import cpu_model
from bench.harness.stack import Stack

DB_NAME = "handoff_bench_export_stream"
LABELS = [str(d) for d in range(10)]


def _noise_png(seed: int, kb: int) -> bytes:
    """A PNG of about `kb` KB: random pixels do not compress."""
    side = max(8, int((kb * 1024 / 3) ** 0.5))
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def _seed(*, media: Path, items: int, kb: int) -> tuple[str, int]:
    """A project with `items` decided items (files on disk); returns (API token, total bytes)."""
    from reviewapp.api.auth import api_client_create  # the models: after django.setup()
    from reviewapp.models import Item, ItemOrigin, Outcome, Project, item_upload_path

    project = Project.objects.create(slug="export", name="export", labels=LABELS)
    _, token = api_client_create(name="bench-export", projects=[project])
    total, rows = 0, []
    pool = [_noise_png(seed, kb) for seed in range(64)]  # varied sizes, unique by a suffix byte
    for index in range(items):
        data = pool[index % len(pool)] + index.to_bytes(4, "big")  # trailing bytes: unique hash
        item = Item(project=project, sha256=hashlib.sha256(data).hexdigest(), image_format="png")
        item.width = item.height = 1
        item.key, item.origin = item.sha256, ItemOrigin.FOLDER
        item.image.name = item_upload_path(item, "")
        path = media / item.image.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
        rows.append(item)
    created = Item.objects.bulk_create(rows, batch_size=1000)
    Outcome.objects.bulk_create(
        [Outcome(item=i, label=LABELS[i.pk % 10], decided_by="human") for i in created],
        batch_size=1000,
    )
    return token, total


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _download(client: httpx.Client, url: str, pid: int) -> dict:
    """Stream one export; seconds, bytes and the worker's peak RSS growth during it."""
    before, peak, done = _rss_mb(pid), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb(pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started, size = time.perf_counter(), 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "seconds": round(seconds, 2),
        "mb": round(size / 1e6, 1),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "rss_growth_mb": round(max(peak[0] - before, 0.0), 1),
    }


def run(args) -> dict:
    url = database_prepare(admin_url=args.admin_url, name=args.database)
    django_setup(url)
    stack = Stack.create(database_url=url, prefix="bench-export-stream-")
    try:
        token, total = _seed(media=stack.media, items=args.items, kb=args.kb)
        web = stack.start_web(workers=1, LOG_LEVEL="WARNING")
        pid = web.children()[0]  # the one gunicorn worker
        base = f"http://127.0.0.1:{stack.web_port}/api/v1/projects/export/export"
        headers = {"Authorization": f"Bearer {token}"}
        results = {"items": args.items, "image_mb": round(total / 1e6, 1)}
        with httpx.Client(headers=headers, timeout=600) as client:
            client.get(f"{base}/manifest.json?warm=1").raise_for_status()  # warm-up
            for name in ("manifest.json", "manifest.csv", "images.zip"):
                results[name] = _download(client, f"{base}/{name}", pid)
    finally:
        stack.remove()
    return results


def _write(args, result: dict) -> None:
    rows = "".join(
        f"| {name} | {r['seconds']} | {r['mb']} | {r['mb_per_s']} | {r['rss_growth_mb']} |\n"
        for name, r in result.items()
        if isinstance(r, dict)
    )
    section = (
        "## Streamed export (issue 17)\n\n"
        f"Command: `{' '.join(['.venv/bin/python bench/export_stream.py', *sys.argv[1:]])}`. "
        f"gunicorn (1 sync worker) on PostgreSQL, one httpx client on the same machine "
        f"({cpu_model()}, 2 cores); "
        f"{result['items']} decided items, {result['image_mb']} MB of PNGs; RSS growth = the "
        f"worker's peak RSS during the download minus its RSS before it; "
        f"load average {os.getloadavg()[0]:.1f} at the end; "
        f"measured {time.strftime('%Y-%m-%d')}. Targets: manifest JSON <= 2 s, zip >= 50 MB/s, "
        "growth <= 50 MB.\n\n"
        "| export | seconds | MB | MB/s | worker RSS growth MB |\n"
        "| --- | ---: | ---: | ---: | ---: |\n" + rows
    )
    marked_section_write("export-stream", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--kb", type=int, default=20, help="approximate size of each image")
    parser.add_argument("--quick", action="store_true", help="1,000 items (a smoke run)")
    parser.add_argument("--no-write", action="store_true")
    database_arguments(parser, name=DB_NAME)
    args = parser.parse_args()
    if args.quick:
        args.items = min(args.items, 1_000)
    os.environ.setdefault("HANDOFF_API_THROTTLE_RATE", "100000/min")
    result = run(args)
    print(json.dumps(result))
    if not args.no_write:
        _write(args, result)


if __name__ == "__main__":
    main()
