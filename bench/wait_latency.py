"""Single `wait` requests over HTTP while a backlog drains, vs a bare forward (issue 17).

    .venv/bin/python -m bench.wait_latency --write             # 10,000-item backlog, 200 requests
    .venv/bin/python -m bench.wait_latency --quick             # 2,000 items, 60 requests, no doc

The stack of bench/predict_pipeline.py (throwaway PostgreSQL and redis-server, resnet18 at
32 px): ``--backlog`` accepted items are inserted and one prefork worker with 2 processes starts
draining them; meanwhile one client sends ``--requests`` single images with ``wait=10`` to
gunicorn (2 gthread workers, 4 threads, as scripts/run.sh), one at a time, and times each from
request to answer. The web process answers through its batcher, never through the Celery queue.
The baseline is the same network's ``model(x)`` on one normalised image, in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from bench.harness.docs import command_line, marked_section_write
from bench.harness.images import digit_png
from bench.harness.machine import machine_summary
from bench.harness.processes import free_port, http_wait
from bench.harness.servers import gunicorn_command
from bench.harness.stats import median, percentile
from bench.predict_pipeline import SPEC, items_accept, pipeline_stack


def bare_single_forward_ms(artifact: dict, *, count: int) -> list[float]:
    """``model(x)`` on one normalised image, ``count`` times: milliseconds each."""
    from reviewapp import ml

    predictor = ml.get_predictor(artifact_path=artifact["path"], sha256=artifact["sha256"])
    size = predictor.preprocessing.size
    image = torch.randn(1, 3, size, size)
    times = []
    with torch.inference_mode():
        for _ in range(5):
            predictor.model(image)
        for _ in range(count):
            started = time.perf_counter()
            predictor.model(image)
            times.append((time.perf_counter() - started) * 1000)
    return times


def wait_requests(stack, *, slug: str, token: str, count: int) -> tuple[list[float], dict]:
    """``count`` single submissions with wait=10, one after another: ms each, status counts."""
    http = stack.http(token=token)
    times, statuses = [], {}
    for index in range(count):
        data = digit_png(900_000 + index)
        started = time.perf_counter()
        status, _, _ = http.post_files(
            f"/api/v1/projects/{slug}/items/", "file", [("w.png", data)], wait="10"
        )
        times.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.05)
    return times, statuses


def run(args: argparse.Namespace) -> dict:
    with pipeline_stack() as stack:
        seeded = stack.seed({**SPEC, "artifact": stack.artifact})
        bare = bare_single_forward_ms(stack.artifact, count=args.requests * 2)
        items_accept(stack, slug=seeded["slug"], count=args.backlog)
        stack.web_port = free_port()
        command = gunicorn_command(port=stack.web_port, workers=2, threads=4)
        stack.group.start("web", command, env=stack.env())
        http_wait(port=stack.web_port, timeout=90)
        stack.start_worker(concurrency=2, HANDOFF_DRIFT_CHECK_EVERY="0")
        from config.celery import app  # Deferred: the Celery app, once Django is set up
        from reviewapp import jobs

        app.conf.broker_url = stack.broker.url
        jobs.job_send(jobs.PREDICT_BATCH)
        jobs.job_send(jobs.PREDICT_BATCH)
        time.sleep(2)  # the drain is under way
        due_query = "SELECT count(*) FROM reviewapp_item WHERE prediction_due_at IS NOT NULL"
        due_before = stack.scalar(due_query)
        times, statuses = wait_requests(
            stack, slug=seeded["slug"], token=seeded["token"], count=args.requests
        )
        due_after = stack.scalar(due_query)
    return {
        "backlog": args.backlog,
        "requests": args.requests,
        "statuses": statuses,
        "backlog_due_before": due_before,
        "backlog_due_after": due_after,
        "wait_p50_ms": round(median(times), 1),
        "wait_p99_ms": round(percentile(times, 99), 1),
        "bare_p50_ms": round(median(bare), 2),
        "bare_p99_ms": round(percentile(bare, 99), 2),
        "target_ms": round(percentile(bare, 99) + 30, 1),
    }


def markdown(figures: dict) -> str:
    rows = [
        ("backlog items (due when the requests started / ended)",
         f"{figures['backlog']:,} ({figures['backlog_due_before']} / "
         f"{figures['backlog_due_after']})"),
        ("single `wait` requests (HTTP status: count)", f"{figures['requests']} "
         f"({', '.join(f'{k}: {v}' for k, v in figures['statuses'].items())})"),
        ("`wait` request p50 / p99 (ms)", f"{figures['wait_p50_ms']} / {figures['wait_p99_ms']}"),
        ("bare single-image forward p50 / p99 (ms)",
         f"{figures['bare_p50_ms']} / {figures['bare_p99_ms']}"),
        ("target: bare p99 + 30 ms", figures["target_ms"]),
    ]  # fmt: skip
    table = "| figure | value |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    return (
        "## A `wait` request while a backlog drains (issue 17)\n\n"
        f"Command: `{command_line()}`\n\nMachine: {machine_summary()}; measured "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} at the end: client, "
        "gunicorn, PostgreSQL and 2 busy prediction processes share the 2 cores. "
        "gunicorn 2 gthread workers x 4 threads; each request is a 32-px PNG with wait=10, "
        "answered by the web process's batcher (reviewapp/intake/batcher.py) from upload to "
        "routed item.\n\n" + table
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2,000 items, 60 requests, no doc")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.backlog, args.requests, args.write = 2000, 60, False
    figures = run(args)
    print(json.dumps(figures, indent=2))
    if args.write:
        marked_section_write("wait-latency", markdown(figures))


if __name__ == "__main__":
    main()
