"""Load benchmark of the review desk: N reviewer clients over HTTP against gunicorn + PostgreSQL.

Each client logs in, then loops claim (GET next.json) -> decide (POST decide.json) until the
queue is empty or the time bound is hit. Afterwards the database is checked: items decided twice
and items left claimed by nobody must both be 0. Last, a yardstick: the same number of clients
posting the cheapest signed-in desk request (renew.json with nothing to renew), which says what
this machine, gunicorn and Django's request stack cost before the desk does any work.

    .venv/bin/python bench/review_load.py                       # 1, 4 and 16 clients, 2,000 items
    .venv/bin/python bench/review_load.py --clients 16 --items 2000 --think-ms 0 --no-write
    .venv/bin/python bench/review_load.py --workers 3 --threads 1   # sync workers, for comparison

Results go to docs/benchmarks.md between the review-load markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.client import Http
from bench.harness.database import database_arguments, database_prepare, django_setup
from bench.harness.docs import marked_section_write
from bench.harness.machine import cpu_model, process_cpu_seconds
from bench.harness.processes import Process, ProcessGroup, http_wait
from bench.harness.servers import gunicorn_command
from bench.harness.stats import percentile_interpolated

DB_NAME = "handoff_bench_review"
PORT = 8765


@dataclass
class ClientResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _review(client: Http, slug: str, seconds: float, think: float, result: ClientResult) -> None:
    """Claim once, then loop for at most `seconds`: (think,) decide + claim the next in one round
    trip."""
    deadline = time.monotonic() + seconds
    base = f"/projects/{slug}/review"
    status, body, _ = client.request("GET", f"{base}/next.json")
    task = json.loads(body)["task"] if status == 200 else None
    while task is not None and time.monotonic() < deadline:
        if think:
            time.sleep(think)
        started = time.perf_counter()
        status, body, _ = client.post_form(
            f"{base}/decide.json",
            {"task": task["id"], "label": "1", "duration_ms": 500, "held": task["id"]},
        )
        if status != 200:
            result.errors.append(f"decide {status}: {body[:120]!r}")
            status, body, _ = client.request("GET", f"{base}/next.json")
            task = json.loads(body)["task"] if status == 200 else None
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        task = json.loads(body)["next"]


def _floor(client: Http, slug: str, seconds: float, result: ClientResult) -> None:
    """The cheapest signed-in desk request (renew no leases): session, user, project access."""
    deadline = time.monotonic() + seconds
    url = f"/projects/{slug}/review/renew.json"
    while time.monotonic() < deadline:
        started = time.perf_counter()
        status, body, _ = client.post_form(url, {"held": ""})
        if status != 200:
            result.errors.append(f"renew {status}: {body[:120]!r}")
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)


def _server_pids(server: Process) -> list[int]:
    return [server.pid, *server.children()]


def _postgres_pids() -> list[int]:
    """The PostgreSQL backends serving the site (not this script's own connection)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def _cpu_snapshot(server: Process) -> dict[str, dict[int, float]]:
    return {
        "server": {pid: process_cpu_seconds(pid) for pid in _server_pids(server)},
        "postgres": {pid: process_cpu_seconds(pid) for pid in _postgres_pids()},
    }


def _cpu_used(before: dict, after: dict, key: str) -> float:
    return sum(after[key][pid] - before[key].get(pid, 0.0) for pid in after[key])


def _check(project) -> dict[str, int]:
    from django.db.models import Count

    from reviewapp.models import Decision, Outcome, ReviewTask

    twice = (
        Decision.objects.filter(item__project=project, undone_at__isnull=True)
        .values("item_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    not_done = ReviewTask.objects.filter(project=project).exclude(status="done").count()
    outcomes = Outcome.objects.filter(item__project=project).count()
    return {"decided_twice": twice, "left_undecided": not_done, "outcomes": outcomes}


def _drive(usernames: list[str], loop, args: tuple, server: Process, port: int) -> dict:
    """Sign the users in, run `loop(client, *args, result)` in a thread each, and measure.

    Latency percentiles, errors, and the CPU time per request of the gunicorn processes
    (`server`: the master), of PostgreSQL's backends and of this process's client threads:
    on a shared machine these say more than the latencies.
    """
    from bench.harness.seeding import PASSWORD  # the models: after django.setup()

    workers = [Http(port, keep_alive=True, timeout=30) for _ in usernames]
    for client, username in zip(workers, usernames, strict=True):
        client.log_in(username, PASSWORD)
    results = [ClientResult() for _ in workers]
    cpu_before, client_before = _cpu_snapshot(server), time.process_time()
    started = time.perf_counter()
    threads = [
        threading.Thread(target=loop, args=(c, *args, r))
        for c, r in zip(workers, results, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    client_cpu, cpu_after = time.process_time() - client_before, _cpu_snapshot(server)
    latencies = [v for r in results for v in r.latencies_ms]
    per_request = 1000 / max(len(latencies), 1)
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 1),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile_interpolated(latencies, 50), 1),
        "p95_ms": round(percentile_interpolated(latencies, 95), 1),
        "p99_ms": round(percentile_interpolated(latencies, 99), 1),
        "errors": sum(len(r.errors) for r in results),
        "server_cpu_ms": round(_cpu_used(cpu_before, cpu_after, "server") * per_request, 2),
        "postgres_cpu_ms": round(_cpu_used(cpu_before, cpu_after, "postgres") * per_request, 2),
        "client_cpu_ms": round(client_cpu * per_request, 2),
    }


def run_scenario(
    clients: int, items: int, time_limit: float, run: str, think: float, server: Process, port: int
) -> dict:
    """Seed, run `clients` reviewers to an empty queue (or the time limit), check the database."""
    from bench.harness import seeding  # the models: after django.setup()

    project, usernames = seeding.review_queue_seed(clients, items, run)
    measured = _drive(usernames, _review, (project.slug, time_limit, think), server, port)
    decisions, per_s = measured.pop("requests"), measured.pop("per_s")
    head = {"clients": clients, "think_ms": round(think * 1000), "items": items}
    return {**head, "decisions": decisions, "decisions_per_s": per_s, **measured, **_check(project)}


def run_floor(clients: int, seconds: float, run: str, server: Process, port: int) -> dict:
    """`clients` signed-in clients posting renew.json for `seconds`: what the machine, gunicorn
    and Django's request stack cost before the desk does any work (a yardstick for the table)."""
    from bench.harness import seeding  # the models: after django.setup()

    project, usernames = seeding.review_queue_seed(clients, 1, run)
    measured = _drive(usernames, _floor, (project.slug, seconds), server, port)
    return {"clients": clients, "requests_per_s": measured.pop("per_s"), **measured}


def _start_gunicorn(group: ProcessGroup, database_url: str, args) -> Process:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "HANDOFF_ENV": "development",
        "DB_CONN_MAX_AGE": "600",
    }
    command = gunicorn_command(port=args.port, workers=args.workers, threads=args.threads)
    process = group.start("web", command, env=env)
    http_wait(port=args.port, timeout=60)
    return process


def _floor_table(floors: list[dict]) -> str:
    if not floors:
        return ""
    lines = "".join(
        f"| {f['clients']} | {f['requests']} | {f['requests_per_s']} | {f['p50_ms']} "
        f"| {f['p95_ms']} | {f['p99_ms']} | {f['errors']} | {f['server_cpu_ms']} "
        f"| {f['postgres_cpu_ms']} | {f['client_cpu_ms']} |\n"
        for f in floors
    )
    return (
        "\nYardstick on the same machine and server, measured in the same run: the same clients "
        "posting `renew.json` with no leases to renew (session, user and project access, no "
        "queue work), closed loop:\n\n| clients | requests | requests/s | p50 ms | p95 ms "
        "| p99 ms | errors | CPU ms/request: server | PostgreSQL | client |\n|"
        + " --- |" * 10
        + "\n"
        + lines
    )


def _write(rows: list[dict], command: str, workers: int, threads: int, floors: list[dict]) -> None:
    header = (
        "| clients | think ms | items | decisions | seconds | decisions/s | p50 ms | p95 ms "
        "| p99 ms | errors | decided twice | left undecided | CPU ms/decision: server "
        "| PostgreSQL | client |\n|" + " --- |" * 15 + "\n"
    )
    lines = "".join(
        f"| {r['clients']} | {r['think_ms']} | {r['items']} | {r['decisions']} | {r['seconds']} | "
        f"{r['decisions_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} "
        f"| {r['decided_twice']} | {r['left_undecided']} | {r['server_cpu_ms']} "
        f"| {r['postgres_cpu_ms']} | {r['client_cpu_ms']} |\n"
        for r in rows
    )
    kind = f"gthread workers x {threads} threads" if threads > 1 else "sync workers"
    section = (
        "## Review desk under load\n\n"
        f"Command: `{command}` (gunicorn, {workers} {kind}, PostgreSQL 15, clients and "
        f"server on the same 2-core machine, {cpu_model()}; round trip = one `decide.json` "
        "request that records the decision and claims the next item; think ms = the simulated "
        "reviewer's pause before each decision, 0 = closed-loop stress; "
        f"measured {time.strftime('%Y-%m-%d')}).\n\n" + header + lines + _floor_table(floors)
    )
    marked_section_write("review-load", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker (above 1: gthread workers)"
    )
    parser.add_argument("--time-limit", type=float, default=240, help="seconds per scenario")
    parser.add_argument(
        "--think-ms",
        type=int,
        nargs="*",
        default=[0, 1000],
        help="reviewer think time per item; 0 = closed-loop stress",
    )
    parser.add_argument(
        "--floor-seconds",
        type=float,
        default=20,
        help="seconds of the renew.json yardstick at the largest client count (0: none)",
    )
    database_arguments(parser, name=DB_NAME)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    database_url = database_prepare(admin_url=args.admin_url, name=args.database)
    django_setup(database_url)
    with tempfile.TemporaryDirectory(prefix="bench-review-load-") as logs:
        group = ProcessGroup(Path(logs))
        try:
            rows, floors = _run_all(args, group, database_url)
        finally:
            group.stop_all(timeout=30)
    if not args.no_write:
        command = "python bench/review_load.py " + " ".join(sys.argv[1:])
        _write(rows, command.strip(), args.workers, args.threads, floors)


def _run_all(args, group: ProcessGroup, database_url: str) -> tuple[list[dict], list[dict]]:
    """Start gunicorn, run every scenario, then the yardstick; print each result as JSON."""
    server = _start_gunicorn(group, database_url, args)
    rows, floors = [], []
    for think_ms in args.think_ms:
        for clients in args.clients:
            run = f"c{clients}-t{think_ms}"
            # With think time a reviewer does ~1 item/s: keep each run near 100 s.
            items = args.items if not think_ms else min(args.items, clients * 100)
            row = run_scenario(
                clients, items, args.time_limit, run, think_ms / 1000, server, args.port
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.floor_seconds > 0:
        floor = run_floor(max(args.clients), args.floor_seconds, "floor", server, args.port)
        print(json.dumps({"floor": floor}), flush=True)
        floors.append(floor)
    return rows, floors


if __name__ == "__main__":
    main()
