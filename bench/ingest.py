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

from bench.common import command_line, machine_summary, median, percentile

START, END = "<!-- ingest:start -->", "<!-- ingest:end -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _setup(database_url: str, tmp: Path):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["ARTIFACTS_ROOT"] = str(tmp / "artifacts")
    os.environ["HANDOFF_API_THROTTLE_RATE"] = "1000000/min"
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    return connection, name


def _project_with_champion(slug: str, artifact):
    from reviewapp.models import Project, Stage
    from reviewapp.rollout import versions

    project = Project.objects.create(
        slug=slug, name=slug, labels=list(artifact.metadata["labels"]), stage=Stage.SUPERVISED
    )
    version = versions.champion_register(project=project, artifact=artifact, reason="b")
    return project, version


def _batches(images: list[bytes], size: int):
    for start in range(0, len(images), size):
        yield [{"image": base64.b64encode(data).decode()} for data in images[start : start + size]]


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
    for entries in _batches(images, batch):
        response = http.post(
            f"/api/v1/projects/{project.slug}/items/batch/", {"items": entries}, format="json"
        )
        assert response.status_code == 202, response.content
        for row in response.json()["results"]:
            item = Item.objects.get(pk=row["item"]["id"])
            prediction, _ = prediction_service.prediction_record(
                item=item, model_version=version, result=by_sha[item.sha256], latency_ms=0.0
            )
            prediction_service.prediction_route(prediction=prediction)
    return len(images) / (time.perf_counter() - started)


def bench_cpu_inference(http, project, images: list[bytes], batch: int) -> float:
    """Batch ingest, then each item predicted on the CPU and routed as a worker does (items/s)."""
    from reviewapp.tasks import predict_item

    started = time.perf_counter()
    for entries in _batches(images, batch):
        response = http.post(
            f"/api/v1/projects/{project.slug}/items/batch/", {"items": entries}, format="json"
        )
        assert response.status_code == 202, response.content
        for row in response.json()["results"]:
            predict_item.run(row["item"]["id"])
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


def write_section(body: str) -> None:
    """Replace our marked section of docs/benchmarks.md (re-read right before writing)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{START}\n{body.rstrip()}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


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
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    connection, name = _setup(database_url, tmp)
    try:
        from rest_framework.test import APIClient

        from reviewapp import ml
        from reviewapp.api.auth import api_client_create

        records = ml.render_demo_digits(tmp / "digits")
        artifact = ml.train_and_save(
            records=records[:300],
            params={"arch": "resnet18", "epochs": 1, "image_size": 32, "device": "cpu"},
            dest=tmp / "artifact",
            dataset_hash="bench",
        )
        images = [Path(r.path).read_bytes() for r in records[300:]]
        n1, n2, n3 = args.items, args.cpu_items, args.latency_items
        pre, pre_version = _project_with_champion("bench-pre", artifact)
        cpu, _ = _project_with_champion("bench-cpu", artifact)
        lat, _ = _project_with_champion("bench-lat", artifact)
        _, token = api_client_create(name="bench", projects=[pre, cpu, lat])
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        bench_sync_latency(http, lat, images[-5:])  # warm-up: model load, first queries
        pre_rate = bench_precomputed(http, pre, pre_version, images[:n1], args.batch)
        cpu_rate = bench_cpu_inference(http, cpu, images[n1 : n1 + n2], args.batch)
        latencies = bench_sync_latency(http, lat, images[n1 + n2 : n1 + n2 + n3])
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
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
        write_section(body)


if __name__ == "__main__":
    main()
