"""API ingest on PostgreSQL: batch throughput (pre-computed predictions, CPU inference) and
single-item synchronous latency.

Run from the repository root (a throwaway test database is created and dropped):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/handoff .venv/bin/python -m bench.ingest --write

Requests go through the whole Django stack in-process (Django's test client: URL routing,
token auth, throttling, multipart/JSON parsing, validation, storage), without a network hop.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

from bench.harness.database import throwaway_database
from bench.harness.docs import command_line, marked_section_write
from bench.harness.machine import machine_summary
from bench.harness.stats import median, percentile


def _ingest_batches(http, project, images: list[bytes], size: int):
    """POST the images in batches of `size`; yields each accepted item's id."""
    for start in range(0, len(images), size):
        entries = [
            {"image": base64.b64encode(data).decode()} for data in images[start : start + size]
        ]
        response = http.post(
            f"/api/v1/projects/{project.slug}/items/batch/", {"items": entries}, format="json"
        )
        assert response.status_code == 202, response.content
        for row in response.json()["results"]:
            yield row["item"]["id"]


def bench_precomputed(http, project, version, images: list[bytes], batch: int) -> float:
    """Batch ingest plus storing and routing predictions computed beforehand (items/s)."""
    from reviewapp import ml
    from reviewapp.intake import prediction_service
    from reviewapp.models import Item

    decoded = [ml.load_image(io.BytesIO(data)) for data in images]
    results = ml.predict_images(
        artifact_path=version.artifact_path, sha256=version.sha256, images=decoded
    )
    by_sha = {}
    for data, result in zip(images, results, strict=True):
        by_sha[hashlib.sha256(data).hexdigest()] = result
    started = time.perf_counter()
    for item_id in _ingest_batches(http, project, images, batch):
        item = Item.objects.get(pk=item_id)
        prediction, _ = prediction_service.prediction_record(
            item=item, model_version=version, result=by_sha[item.sha256], latency_ms=0.0
        )
        prediction_service.prediction_route(prediction=prediction)
    return len(images) / (time.perf_counter() - started)


def bench_cpu_inference(http, project, images: list[bytes], batch: int) -> float:
    """Batch ingest, then each item predicted on the CPU and routed as a worker does (items/s)."""
    from reviewapp.tasks import predict_item

    started = time.perf_counter()
    for item_id in _ingest_batches(http, project, images, batch):
        predict_item.run(item_id)
    return len(images) / (time.perf_counter() - started)


def bench_sync_latency(http, project, images: list[bytes]) -> list[float]:
    """Single submit with wait=10: upload to answer, in milliseconds."""
    latencies = []
    for index, data in enumerate(images):
        upload = io.BytesIO(data)
        upload.name = f"{index}.png"
        started = time.perf_counter()
        response = http.post(
            f"/api/v1/projects/{project.slug}/items/",
            {"file": upload, "wait": "10"},
            format="multipart",
        )
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.content
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--cpu-items", type=int, default=200)
    parser.add_argument("--latency-items", type=int, default=60)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        raise SystemExit(
            "set DATABASE_URL to a PostgreSQL server (the benchmark is for PostgreSQL)"
        )
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        folders = {"MEDIA_ROOT": str(tmp / "media"), "ARTIFACTS_ROOT": str(tmp / "artifacts")}
        with throwaway_database(database_url, HANDOFF_API_THROTTLE_RATE="1000000/min", **folders):
            from rest_framework.test import APIClient

            from bench.harness import seeding  # the models: after django.setup()
            from reviewapp import ml
            from reviewapp.api.auth import api_client_create
            from reviewapp.models import Stage

            records = ml.render_demo_digits(tmp / "digits")
            artifact = seeding.tiny_model_train(
                records=records[:300], dest=tmp / "artifact", dataset_hash="bench"
            )
            images = [Path(r.path).read_bytes() for r in records[300:]]
            n1, n2, n3 = args.items, args.cpu_items, args.latency_items
            (pre, pre_version), (cpu, _), (lat, _) = (
                seeding.project_with_champion(slug=slug, artifact=artifact, stage=Stage.SUPERVISED)
                for slug in ("bench-pre", "bench-cpu", "bench-lat")
            )
            _, token = api_client_create(name="bench", projects=[pre, cpu, lat])
            http = APIClient()
            http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            bench_sync_latency(http, lat, images[-5:])  # warm-up: model load, first queries
            pre_rate = bench_precomputed(http, pre, pre_version, images[:n1], args.batch)
            cpu_rate = bench_cpu_inference(http, cpu, images[n1 : n1 + n2], args.batch)
            latencies = bench_sync_latency(http, lat, images[n1 + n2 : n1 + n2 + n3])
    body = "\n".join(
        [
            "## API ingest (issue 7)",
            "",
            f"`{command_line()}` on PostgreSQL; {machine_summary()}.",
            "In-process requests (Django test client): routing, token auth, throttling, parsing,",
            "full image validation, content-addressed storage; 8x8 digit PNGs, tiny resnet18.",
            "Measured on 2 CPU cores shared with other jobs running at the same time:",
            "a lower bound.",
            "",
            "| measurement | items | result |",
            "| --- | ---: | ---: |",
            f"| batch ingest ({args.batch}/request), pre-computed predictions stored and routed "
            f"| {n1} | {pre_rate:.1f} items/s |",
            f"| batch ingest ({args.batch}/request), CPU inference per item | {n2} "
            f"| {cpu_rate:.1f} items/s |",
            f"| single item, `wait=10` (synchronous CPU prediction), p50 | {n3} "
            f"| {median(latencies):.1f} ms |",
            f"| single item, `wait=10`, p99 | {n3} | {percentile(latencies, 99):.1f} ms |",
        ]
    )
    print(body)
    if args.write:
        marked_section_write("ingest", body)


if __name__ == "__main__":
    main()
