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
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "handoff_bench_review"
PASSWORD = "bench-reviewer-password-123"  # noqa: S105 - throwaway benchmark users
PORT = 8765


@dataclass
class ClientResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _recreate_database(admin_url: str) -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.common import database_recreate

    return database_recreate(admin_url=admin_url, name=DB_NAME)


def _seed(clients: int, items: int, run: str):
    """A project with `items` open shadow tasks and `clients` reviewers."""
    from django.contrib.auth import get_user_model

    from reviewapp.accounts.services import groups_ensure
    from reviewapp.models import Item, Project, ReviewReason, ReviewTask

    reviewers_group, _ = groups_ensure()
    project = Project.objects.create(
        slug=f"load-{run}", name=f"Load {run}", labels=list("0123456789")
    )
    users = []
    for index in range(clients):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-{index}")
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(reviewers_group)
        users.append(user)
    project.reviewers.add(*users)
    rows = [
        Item(
            project=project,
            sha256=f"{run}-{n:060d}"[-64:],
            key=f"{run}-{n}",
            image=f"items/bench/{n}.png",
            width=32,
            height=32,
            origin="simulation",
        )
        for n in range(items)
    ]
    created = Item.objects.bulk_create(rows, batch_size=1000)
    ReviewTask.objects.bulk_create(
        [
            ReviewTask(project=project, item=i, reason=ReviewReason.SHADOW, priority=20)
            for i in created
        ],
        batch_size=1000,
    )
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would keep them
        cursor.execute("ANALYZE")
    return project, [u.username for u in users]


# gunicorn closes a keep-alive connection idle for 2 s (its default); a client idle for longer
# opens a new one rather than find out by a failed request.
KEEPALIVE_IDLE_S = 1.5


class Client:
    """One reviewer: a cookie jar over one keep-alive HTTP connection (reopened when closed)."""

    def __init__(self, username: str) -> None:
        self.cookies: dict[str, str] = {}
        self.username = username
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        self.last_used = 0.0

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if time.monotonic() - self.last_used > KEEPALIVE_IDLE_S:
            self.conn.close()  # the next request opens a fresh connection
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
            headers["Referer"] = f"http://127.0.0.1:{PORT}/"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        self.last_used = time.monotonic()
        return response.status, payload

    def log_in(self) -> None:
        self.request("GET", "/accounts/login/")
        status, _ = self.request(
            "POST", "/accounts/login/", {"username": self.username, "password": PASSWORD}
        )
        if status != 302:
            raise RuntimeError(f"login failed for {self.username}: HTTP {status}")


def _review(client: Client, slug: str, seconds: float, think: float, result: ClientResult) -> None:
    """Claim once, then loop for at most `seconds`: (think,) decide + claim the next in one round
    trip."""
    deadline = time.monotonic() + seconds
    base = f"/projects/{slug}/review"
    status, body = client.request("GET", f"{base}/next.json")
    task = json.loads(body)["task"] if status == 200 else None
    while task is not None and time.monotonic() < deadline:
        if think:
            time.sleep(think)
        started = time.perf_counter()
        status, body = client.request(
            "POST",
            f"{base}/decide.json",
            {"task": task["id"], "label": "1", "duration_ms": 500, "held": task["id"]},
        )
        if status != 200:
            result.errors.append(f"decide {status}: {body[:120]!r}")
            status, body = client.request("GET", f"{base}/next.json")
            task = json.loads(body)["task"] if status == 200 else None
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        task = json.loads(body)["next"]


def _floor(client: Client, slug: str, seconds: float, result: ClientResult) -> None:
    """The cheapest signed-in desk request (renew no leases): session, user, project access."""
    deadline = time.monotonic() + seconds
    url = f"/projects/{slug}/review/renew.json"
    while time.monotonic() < deadline:
        started = time.perf_counter()
        status, body = client.request("POST", url, {"held": ""})
        if status != 200:
            result.errors.append(f"renew {status}: {body[:120]!r}")
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)


def _percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0.0
    )


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process on this machine (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def _postgres_pids() -> list[int]:
    """The PostgreSQL backends serving the site (not this script's own connection)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DB_NAME],
        )
        return [row[0] for row in cursor.fetchall()]


def _cpu_snapshot(master: int) -> dict[str, dict[int, float]]:
    return {
        "server": {pid: _cpu_seconds(pid) for pid in _server_pids(master)},
        "postgres": {pid: _cpu_seconds(pid) for pid in _postgres_pids()},
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


def _drive(usernames: list[str], loop, args: tuple, server: int) -> dict:
    """Sign the users in, run `loop(client, *args, result)` in a thread each, and measure.

    Latency percentiles, errors, and the CPU time per request of the gunicorn processes
    (`server`: the master's pid), of PostgreSQL's backends and of this process's client threads:
    on a shared machine these say more than the latencies.
    """
    workers = [Client(name) for name in usernames]
    for client in workers:
        client.log_in()
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
        "p50_ms": round(_percentile(latencies, 50), 1),
        "p95_ms": round(_percentile(latencies, 95), 1),
        "p99_ms": round(_percentile(latencies, 99), 1),
        "errors": sum(len(r.errors) for r in results),
        "server_cpu_ms": round(_cpu_used(cpu_before, cpu_after, "server") * per_request, 2),
        "postgres_cpu_ms": round(_cpu_used(cpu_before, cpu_after, "postgres") * per_request, 2),
        "client_cpu_ms": round(client_cpu * per_request, 2),
    }


def run_scenario(
    clients: int, items: int, time_limit: float, run: str, think: float, server: int
) -> dict:
    """Seed, run `clients` reviewers to an empty queue (or the time limit), check the database."""
    project, usernames = _seed(clients, items, run)
    measured = _drive(usernames, _review, (project.slug, time_limit, think), server)
    decisions, per_s = measured.pop("requests"), measured.pop("per_s")
    head = {"clients": clients, "think_ms": round(think * 1000), "items": items}
    return {**head, "decisions": decisions, "decisions_per_s": per_s, **measured, **_check(project)}


def run_floor(clients: int, seconds: float, run: str, server: int) -> dict:
    """`clients` signed-in clients posting renew.json for `seconds`: what the machine, gunicorn
    and Django's request stack cost before the desk does any work (a yardstick for the table)."""
    project, usernames = _seed(clients, 1, run)
    measured = _drive(usernames, _floor, (project.slug, seconds), server)
    return {"clients": clients, "requests_per_s": measured.pop("per_s"), **measured}


def _start_gunicorn(database_url: str, workers: int, threads: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "HANDOFF_ENV": "development",
        "DB_CONN_MAX_AGE": "600",
    }
    command = [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{PORT}"]
    command += ["--workers", str(workers), "--log-level", "warning"]
    if threads > 1:  # gthread workers keep the clients' connections alive between requests
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", PORT, timeout=2).request(
                "GET", "/accounts/login/"
            )
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("gunicorn did not start")


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


def _cpu_model() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.common import cpu_model

    return cpu_model()


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
        "<!-- review-load:start -->\n## Review desk under load\n\n"
        f"Command: `{command}` (gunicorn, {workers} {kind}, PostgreSQL 15, clients and "
        f"server on the same 2-core machine, {_cpu_model()}; round trip = one `decide.json` "
        "request that records the decision and claims the next item; think ms = the simulated "
        "reviewer's pause before each decision, 0 = closed-loop stress; "
        f"measured {time.strftime('%Y-%m-%d')}).\n\n"
        + header
        + lines
        + _floor_table(floors)
        + "<!-- review-load:end -->"
    )
    path = ROOT / "docs/benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"<!-- review-load:start -->.*?<!-- review-load:end -->", re.S)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n")


def main() -> None:
    global DB_NAME, PORT  # noqa: PLW0603 - the one run's settings, read by the helpers above
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
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default=DB_NAME, help="recreated for the run")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    DB_NAME, PORT = args.database, args.port
    database_url = _recreate_database(args.admin_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
    )
    _setup_django(database_url)
    server = _start_gunicorn(database_url, args.workers, args.threads)
    rows, floors = [], []
    try:
        for think_ms in args.think_ms:
            for clients in args.clients:
                run = f"c{clients}-t{think_ms}"
                # With think time a reviewer does ~1 item/s: keep each run near 100 s.
                items = args.items if not think_ms else min(args.items, clients * 100)
                row = run_scenario(
                    clients, items, args.time_limit, run, think_ms / 1000, server.pid
                )
                print(json.dumps(row), flush=True)
                rows.append(row)
        if args.floor_seconds > 0:
            floor = run_floor(max(args.clients), args.floor_seconds, "floor", server.pid)
            print(json.dumps({"floor": floor}), flush=True)
            floors.append(floor)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    if not args.no_write:
        command = "python bench/review_load.py " + " ".join(sys.argv[1:])
        _write(rows, command.strip(), args.workers, args.threads, floors)


if __name__ == "__main__":
    main()
