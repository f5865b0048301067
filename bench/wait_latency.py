"""Single `wait` requests over HTTP while a backlog drains, vs a bare forward (issue 17).

    .venv/bin/python -m bench.wait_latency --write             # 10,000-item backlog, 200 requests
    .venv/bin/python -m bench.wait_latency --quick             # 2,000 items, 60 requests, no doc

The stack of bench/predict_pipeline.py (throwaway PostgreSQL and redis-server, resnet18 at
32 px): ``--backlog`` accepted items are inserted and one prefork worker with 2 processes starts
draining them; meanwhile one client sends ``--requests`` single images with ``wait=10`` to
gunicorn (2 gthread workers, 4 threads, as scripts/run.sh), one at a time, and times each from
request to answer. The web process answers through its batcher, never through the Celery queue.
The baseline is the same network's ``model(x)`` on one normalised image, in this process.

Before the drain starts, ``--warmup`` requests (sent four at a time, so each web process gets
some) load the model in the web processes; the slowest of them is reported, not counted.
``--worker-nice`` and ``--web-threads`` set HANDOFF_PREDICT_WORKER_NICE and
HANDOFF_API_PREDICT_THREADS (the defaults unless given), to compare runs on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from bench.harness.docs import command_line, marked_section_write
from bench.harness.images import digit_png
from bench.harness.machine import machine_summary
from bench.harness.processes import free_port, http_wait
from bench.harness.servers import gunicorn_command
from bench.harness.stats import median, percentile
from bench.predict_pipeline import SPEC, bare_network, items_accept, pipeline_stack
from reviewapp.api import timing


def bare_single_forward_ms(artifact: dict, *, count: int, threads: int) -> list[float]:
    """``model(x)`` on one normalised image on ``threads`` torch threads, ``count`` times: ms
    each."""
    model, size = bare_network(artifact)
    image = torch.randn(1, 3, size, size)
    times, before = [], torch.get_num_threads()
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for _ in range(5):
            model(image)
        for _ in range(count):
            started = time.perf_counter()
            model(image)
            times.append((time.perf_counter() - started) * 1000)
    torch.set_num_threads(before)
    return times


def bare_figures(artifact: dict, *, count: int) -> dict:
    """The bare forward on torch's default threads and on one (the web batcher's default): p50
    and p99 of each; the target is the lower p99 + 30 ms (the stricter baseline)."""
    figures, p99s = {}, []
    for threads in dict.fromkeys([torch.get_num_threads(), 1]):
        times = bare_single_forward_ms(artifact, count=count, threads=threads)
        figures[f"bare_{threads}t_p50_p99_ms"] = [
            round(median(times), 2), round(percentile(times, 99), 2)
        ]  # fmt: skip
        p99s.append(percentile(times, 99))
    figures["bare_p99_ms"] = round(min(p99s), 2)
    figures["target_ms"] = round(min(p99s) + 30, 1)
    return figures


def wait_requests(stack, *, slug: str, token: str, count: int, seed: int, still_due=None) -> dict:
    """``count`` single submissions with wait=10, one after another: for each, the server's
    phases (its Server-Timing header, ms) with ``client``, the whole request as the client saw
    it, and ``outside``, the client's time beyond the view's ``app``; and the HTTP statuses.

    With ``still_due`` (a count of the backlog), the requests stop early once it is drained:
    every timed request ran while the workers were busy."""
    http = stack.http(token=token)
    phases, statuses = [], {}
    for index in range(count):
        if still_due is not None and index % 10 == 0 and index and still_due() == 0:
            break
        data = digit_png(seed + index)
        started = time.perf_counter()
        status, _, headers = http.post_files(
            f"/api/v1/projects/{slug}/items/", "file", [("w.png", data)], wait="10"
        )
        client_ms = (time.perf_counter() - started) * 1000
        server = {k.lower(): v for k, v in headers.items()}.get("server-timing", "")
        entry = {**timing.parse(server), "client": client_ms}
        if "app" in entry:
            entry["outside"] = client_ms - entry["app"]
        phases.append(entry)
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.05)
    return {"phases": phases, "statuses": statuses}


def phase_figures(phases: list[dict]) -> dict:
    """p50 and p99 of each phase over the requests (``client``: the whole request)."""
    names = list(dict.fromkeys(name for entry in phases for name in entry))
    figures = {}
    for name in names:
        values = [entry[name] for entry in phases if name in entry]
        figures[name] = [round(median(values), 1), round(percentile(values, 99), 1)]
    return figures


def slowest(phases: list[dict], count: int = 3) -> list[dict]:
    """The slowest requests' phases (ms), to see which phase a stall sits in."""
    ranked = sorted(phases, key=lambda entry: entry["client"], reverse=True)[:count]
    return [{name: round(value, 1) for name, value in entry.items()} for entry in ranked]


def warm_up(stack, *, slug: str, token: str, count: int) -> float:
    """``count`` wait requests, four at a time: each web process loads the model. Slowest ms."""

    def one(index: int) -> float:
        started = time.perf_counter()
        stack.http(token=token).post_files(
            f"/api/v1/projects/{slug}/items/", "file", [("w.png", digit_png(800_000 + index))],
            wait="10",
        )  # fmt: skip
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(max_workers=4) as pool:
        return max(pool.map(one, range(count)), default=0.0)


def worker_nice(worker) -> list[int]:
    """The nice value of the worker's pool processes (field 19 of /proc/PID/stat)."""
    values = []
    for pid in worker.children():
        stat = Path(f"/proc/{pid}/stat").read_text()
        values.append(int(stat.rsplit(")", 1)[1].split()[16]))
    return values


def drain_started(stack, due_query: str, *, backlog: int, timeout: float) -> float:
    """Wait until the workers have settled a first batch (the drain is under way): seconds."""
    started = time.perf_counter()
    while stack.scalar(due_query) >= backlog and time.perf_counter() - started < timeout:
        time.sleep(0.2)
    time.sleep(1)
    return time.perf_counter() - started


def knobs(args: argparse.Namespace) -> dict:
    """The environment of the run's settings under comparison (only those given)."""
    env = {}
    if args.worker_nice is not None:
        env["HANDOFF_PREDICT_WORKER_NICE"] = str(args.worker_nice)
    if args.web_threads is not None:
        env["HANDOFF_API_PREDICT_THREADS"] = str(args.web_threads)
    return env


def run(args: argparse.Namespace) -> dict:
    with pipeline_stack() as stack:
        seeded = stack.seed({**SPEC, "artifact": stack.artifact})
        bare = bare_figures(stack.artifact, count=args.requests * 2)
        items_accept(stack, slug=seeded["slug"], count=args.backlog)
        stack.web_port = free_port()
        command = gunicorn_command(port=stack.web_port, workers=2, threads=4)
        web = stack.group.start("web", command, env=stack.env(**knobs(args)))
        http_wait(port=stack.web_port, timeout=90)
        warmup_ms = warm_up(stack, slug=seeded["slug"], token=seeded["token"], count=args.warmup)
        quiet = wait_requests(
            stack, slug=seeded["slug"], token=seeded["token"], count=args.quiet, seed=700_000
        )  # no worker running yet: the request's own cost
        worker = stack.start_worker(concurrency=2, HANDOFF_DRIFT_CHECK_EVERY="0", **knobs(args))
        load_before = os.getloadavg()[0]
        from config.celery import app  # Deferred: the Celery app, once Django is set up
        from reviewapp import jobs

        app.conf.broker_url = stack.broker.url
        jobs.job_send(jobs.PREDICT_BATCH)
        jobs.job_send(jobs.PREDICT_BATCH)
        due_query = "SELECT count(*) FROM reviewapp_item WHERE prediction_due_at IS NOT NULL"
        drain_wait_s = drain_started(stack, due_query, backlog=args.backlog, timeout=120)
        due_before = stack.scalar(due_query)
        started = time.perf_counter()
        loaded = wait_requests(
            stack,
            slug=seeded["slug"],
            token=seeded["token"],
            count=args.requests,
            seed=900_000,
            still_due=lambda: stack.scalar(due_query),
        )
        statuses = loaded["statuses"]
        due_after = stack.scalar(due_query)
        drained = (due_before - due_after) / (time.perf_counter() - started)
        nice = worker_nice(worker)
        frozen = [
            line.split("heap.frozen ", 1)[1]
            for line in web.log().splitlines()
            if "heap.frozen" in line
        ]
    phases, quiet_phases = phase_figures(loaded["phases"]), phase_figures(quiet["phases"])
    return {
        "load_average_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "worker_pool_nice": nice,
        "web_heap_frozen": frozen,
        "web_predict_threads": args.web_threads,
        "warmup_requests": args.warmup,
        "warmup_slowest_ms": round(warmup_ms, 1),
        "backlog": args.backlog,
        "requests": len(loaded["phases"]),
        "statuses": statuses,
        "drain_start_seconds": round(drain_wait_s, 1),
        "backlog_due_before": due_before,
        "backlog_due_after": due_after,
        "drain_items_per_second": round(drained, 1),
        "wait_p50_ms": phases["client"][0],
        "wait_p99_ms": phases["client"][1],
        "phases_p50_p99_ms": phases,
        "slowest_requests_ms": slowest(loaded["phases"]),
        "quiet_requests": args.quiet,
        "quiet_p50_p99_ms": quiet_phases["client"],
        "quiet_phases_p50_p99_ms": quiet_phases,
        **bare,
    }


def markdown(figures: dict) -> str:
    load = figures["load_average_before_after"]
    rows = [
        ("backlog items (due when the requests started / ended)",
         f"{figures['backlog']:,} ({figures['backlog_due_before']} / "
         f"{figures['backlog_due_after']})"),
        ("backlog drained while the requests ran (items/s)", figures["drain_items_per_second"]),
        ("prediction worker pool nice values", figures["worker_pool_nice"]),
        ("single `wait` requests sent while the backlog drained (HTTP status: count)",
         f"{figures['requests']} "
         f"({', '.join(f'{k}: {v}' for k, v in figures['statuses'].items())})"),
        ("`wait` request p50 / p99 (ms)", f"{figures['wait_p50_ms']} / {figures['wait_p99_ms']}"),
        *((f"bare single-image forward, {key.split('_')[1]}: p50 / p99 (ms)",
           " / ".join(map(str, value)))
          for key, value in figures.items() if key.startswith("bare_") and "t_p50" in key),
        ("target: the lower bare p99 + 30 ms", figures["target_ms"]),
        (f"{figures['quiet_requests']} `wait` requests before the drain: p50 / p99 (ms)",
         " / ".join(map(str, figures["quiet_p50_p99_ms"]))),
        (f"slowest of {figures['warmup_requests']} warm-up requests (model load, not counted)",
         figures["warmup_slowest_ms"]),
    ]  # fmt: skip
    table = "| figure | value |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    quiet, loaded = figures["quiet_phases_p50_p99_ms"], figures["phases_p50_p99_ms"]
    phases = (
        "\nWhere the time went, from each response's Server-Timing header (ms, p50 / p99; "
        "`outside` is the client's time beyond the view's `app`):\n\n"
        "| phase | before the drain | while it drains |\n| --- | --- | --- |\n"
        + "".join(
            f"| {name} | {' / '.join(map(str, quiet.get(name, ['-'])))} | "
            f"{' / '.join(map(str, loaded.get(name, ['-'])))} |\n"
            for name in dict.fromkeys([*loaded, *quiet])
        )
    )
    return (
        "## A `wait` request while a backlog drains (issue 17)\n\n"
        f"Command: `{command_line()}`\n\nMachine: {machine_summary()}; measured "
        f"{time.strftime('%Y-%m-%d')}, load average {load[0]} when the requests started and "
        f"{load[1]} when they ended: client, gunicorn, PostgreSQL and 2 prediction processes "
        "share the 2 cores. gunicorn 2 gthread workers x 4 threads; each request is a 32-px PNG "
        "with wait=10, answered by the web process's batcher (reviewapp/intake/batcher.py) from "
        "upload to routed item.\n\n" + table + phases
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=16, help="requests before timing")
    parser.add_argument("--quiet", type=int, default=50, help="timed requests before the drain")
    parser.add_argument("--worker-nice", type=int, help="HANDOFF_PREDICT_WORKER_NICE")
    parser.add_argument("--web-threads", type=int, help="HANDOFF_API_PREDICT_THREADS")
    parser.add_argument("--quick", action="store_true", help="2,000 items, 60 requests, no doc")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.backlog, args.requests, args.quiet, args.write = 2000, 60, 20, False
    figures = run(args)
    print(json.dumps(figures, indent=2))
    if args.write:
        marked_section_write("wait-latency", markdown(figures))


if __name__ == "__main__":
    main()
