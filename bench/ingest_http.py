"""Bulk ingest over HTTP (issue 17): gunicorn on PostgreSQL, 32-px PNGs, 200 per batch request.

Client threads on the same machine (httpx, one keep-alive connection each) POST pre-encoded
batch bodies to `/api/v1/projects/{slug}/items/batch/`; the rate is items accepted (202,
created) per second of wall time from the first request to the last answer. Afterwards the
database and the media folder are checked: every item has its row, its outbox mark and its file.
The prediction messages go to a private redis-server; no worker runs (ingest only).

    .venv/bin/python bench/ingest_http.py                 # 20,000 items, 4 client threads
    .venv/bin/python bench/ingest_http.py --quick --no-write

Results go to docs/benchmarks.md between the ingest-http markers.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.harness.database import database_arguments, database_prepare, django_setup
from bench.harness.docs import marked_section_write
from bench.harness.images import png
from bench.harness.machine import cpu_model, process_cpu_seconds
from bench.harness.stack import Stack

DB_NAME = "handoff_bench_ingest_http"
LABEL_STUDIO_IMPORT_PER_S = 410  # /work/shared/peers/label-studio/README.md, re-run 2026-12-01


def _bodies(items: int, batch: int, size: int) -> list[bytes]:
    """Batch request bodies of unique PNGs, encoded before the clock starts."""
    bodies = []
    for start in range(0, items, batch):
        entries = [
            {"image": base64.b64encode(png(seed, size=size)).decode()}
            for seed in range(start, min(start + batch, items))
        ]
        bodies.append(json.dumps({"items": entries}).encode())
    return bodies


def _post_all(port: int, token: str, slug: str, bodies: list[bytes], clients: int) -> dict:
    """`clients` threads take bodies from a shared list until it is empty; count the items."""
    url = f"http://127.0.0.1:{port}/api/v1/projects/{slug}/items/batch/"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    lock, queue = threading.Lock(), list(reversed(bodies))
    created, errors, latencies = [0], [], []

    def run() -> None:
        with httpx.Client(headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                started = time.perf_counter()
                response = client.post(url, content=body)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed * 1000)
                    if response.status_code != 202:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                    created[0] += sum(r["created"] for r in response.json()["results"])

    threads = [threading.Thread(target=run) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "created": created[0],
        "seconds": round(seconds, 2),
        "items_per_s": round(created[0] / seconds, 1),
        "request_p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else 0,
        "errors": errors[:5],
    }


def _stored(stack: Stack, slug: str) -> dict:
    rows = stack.scalar(
        "SELECT count(*) FROM reviewapp_item i JOIN reviewapp_project p ON p.id = i.project_id "
        "WHERE p.slug = %s",
        slug,
    )
    due = stack.scalar(
        "SELECT count(*) FROM reviewapp_item i JOIN reviewapp_project p ON p.id = i.project_id "
        "WHERE p.slug = %s AND i.prediction_due_at IS NOT NULL",
        slug,
    )
    folder = (
        stack.media
        / "items"
        / str(stack.scalar("SELECT id FROM reviewapp_project WHERE slug = %s", slug))
    )
    files = sum(1 for p in folder.rglob("*.png") if p.is_file())
    return {"rows": rows, "outbox_marked": due, "files": files}


def _seed(slug: str) -> str:
    from reviewapp.api.auth import api_client_create  # the models: after django.setup()
    from reviewapp.models import Project

    projects = [
        Project.objects.create(slug=name, name=name, labels=[str(d) for d in range(10)])
        for name in (slug, "warm-up")
    ]
    _, token = api_client_create(name="bench-ingest", projects=projects)
    return token


def run(args) -> dict:
    url = database_prepare(admin_url=args.admin_url, name=args.database)
    django_setup(url)
    token = _seed("ingest")
    bodies = _bodies(args.items, args.batch, args.size)
    stack = Stack.create(database_url=url, prefix="bench-ingest-http-")
    try:
        web = stack.start_web(workers=args.workers, LOG_LEVEL="WARNING")
        _post_all(stack.web_port, token, "warm-up", _bodies(args.batch, args.batch, 32), 2)
        pids = [web.pid, *web.children()]
        cpu_before = sum(process_cpu_seconds(pid) for pid in pids)
        result = _post_all(stack.web_port, token, "ingest", bodies, args.clients)
        result["server_cpu_ms_per_item"] = round(
            1000 * (sum(process_cpu_seconds(p) for p in pids) - cpu_before) / max(args.items, 1),
            3,
        )
        result.update(_stored(stack, "ingest"))
    finally:
        stack.remove()
    return result


def _write(args, result: dict) -> None:
    ratio = result["items_per_s"] / LABEL_STUDIO_IMPORT_PER_S
    section = (
        "## Bulk ingest over HTTP (issue 17)\n\n"
        f"Command: `{' '.join(['.venv/bin/python bench/ingest_http.py', *sys.argv[1:]])}`. "
        f"gunicorn ({args.workers} sync workers) on PostgreSQL, {args.clients} httpx client "
        f"threads on the same machine ({cpu_model()}, 2 cores), {args.size}-px unique PNGs, "
        f"{args.batch} per batch request, "
        f"prediction messages to a private redis-server, no worker; "
        f"load average {os.getloadavg()[0]:.1f} at the end; "
        f"measured {time.strftime('%Y-%m-%d')}.\n\n"
        "| items | seconds | items/s accepted and stored | request p50 ms "
        "| server CPU ms/item | rows | outbox marks | files | errors |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        f"| {result['created']} | {result['seconds']} | {result['items_per_s']} "
        f"| {result['request_p50_ms']} | {result['server_cpu_ms_per_item']} | {result['rows']} "
        f"| {result['outbox_marked']} | {result['files']} | {len(result['errors'])} |\n\n"
        f"Label Studio CE's import of 10,000 tasks on PostgreSQL (URLs only, no image bytes; "
        f"`../shared/peers/label-studio/`, re-run 2026-12-01): {LABEL_STUDIO_IMPORT_PER_S} "
        f"tasks/s. Ratio: **{ratio:.2f}x** (Handoff receives, decodes and stores the images).\n"
    )
    marked_section_write("ingest-http", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--size", type=int, default=32, help="PNG side in pixels")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--quick", action="store_true", help="2,000 items (a smoke run)")
    parser.add_argument("--no-write", action="store_true")
    database_arguments(parser, name=DB_NAME)
    args = parser.parse_args()
    if args.quick:
        args.items = min(args.items, 2_000)
    result = run(args)
    print(json.dumps(result))
    if not args.no_write and not result["errors"]:
        _write(args, result)


if __name__ == "__main__":
    main()
