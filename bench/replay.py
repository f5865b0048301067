"""The headline benchmark: a labeled digit stream, with a night shift in the middle, replayed end
to end through the running system under three policies (issue 9).

The stream (the demo's held-out digits, in index order) goes through the REST API (token auth)
-> a real Celery worker -> router -> review queues; simulated reviewers answer review tasks over
HTTP on the desk's JSON endpoints with a set accuracy and speed; beat runs the rollout engine's
and the retraining triggers' periodic tasks; a real `-Q training` worker retrains. Only this
harness knows the true digits. Arms: (a) everything manual, (b) a fixed 0.9 confidence threshold
with no gates, OOD flag, drift checks or retraining, (c) Handoff.

    .venv/bin/python bench/replay.py              # full run, writes docs/benchmarks.md + plot
    .venv/bin/python bench/replay.py --quick      # ~240 items, 2 training epochs
    .venv/bin/python bench/replay.py --smoke --no-write --out /tmp/replay   # tiny (tests)

Needs PostgreSQL (own database, recreated) and Redis (CELERY_BROKER_URL, default db 6).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, command_line, database_recreate, machine_summary, replace_section

HEADING = "## Replay: human effort saved at a bounded error"
SCALES = {  # stream items, champion epochs and training digits, base items kept, drain timeout s
    "full": {"stream": None, "epochs": 3, "train": 1000, "base": 1000, "drain": 180},
    "quick": {"stream": 240, "epochs": 3, "train": 1000, "base": 1000, "drain": 90},
    "smoke": {"stream": 24, "epochs": 1, "train": 300, "base": 60, "drain": 60},
}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="~240 items (own checks, CI)")
    scale.add_argument("--smoke", action="store_true", help="24 items (the smoke test)")
    parser.add_argument(
        "--arms", nargs="*", default=["manual", "threshold", "handoff", "handoff-automated"]
    )
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--stream", type=int, help="stream length (default: scale's)")
    parser.add_argument("--onset", type=float, default=0.3, help="shift on at this fraction")
    parser.add_argument("--recovery", type=float, default=0.7, help="shift off at this fraction")
    parser.add_argument(
        "--shift", default="night", choices=["night", "grayscale", "lowres", "rotate"]
    )
    parser.add_argument("--rate", type=float, default=3.0, help="items submitted per second")
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--reviewer-accuracy", type=float, default=0.98)
    parser.add_argument("--think-ms", type=int, default=300, help="reviewer time per item")
    parser.add_argument("--gate-min-reviews", type=int, default=30)
    parser.add_argument("--gate-target", type=float, default=0.85)
    parser.add_argument("--gate-confidence", type=float, default=0.8)
    parser.add_argument("--retrain-every", type=int, default=40, help="corrections per run")
    parser.add_argument("--champion-artifact", type=Path, help="skip training the champion")
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="handoff_bench_replay")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench-replay")
    parser.add_argument("--no-write", action="store_true", help="leave docs/ alone")
    return parser.parse_args()


def _environment(args, database_url: str) -> dict[str, str]:
    """The settings every process of the run shares (set here before Django starts)."""
    env = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/6"),
        "HANDOFF_VAR_DIR": str(args.out / "var"),
        "HANDOFF_ENV": "development",
        "HANDOFF_API_THROTTLE_RATE": "100000/min",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
        "PYTHONUNBUFFERED": "1",
    }
    for folder in ("MEDIA_ROOT", "ARTIFACTS_ROOT", "HANDOFF_BROKER_DIR"):
        os.environ.pop(folder, None)  # derived from HANDOFF_VAR_DIR
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return {**os.environ}


def _prepare(args, scale: dict):
    """Fresh database, the digits, the champion (and its no-OOD twin), one project per arm."""
    database_url = database_recreate(admin_url=args.admin_url, name=args.database)
    env = _environment(args, database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    import django

    django.setup()
    from bench import replay_world as world
    from config.celery import app
    from reviewapp import beat

    app.control.purge()
    var = Path(env["HANDOFF_VAR_DIR"])
    split = world.digits_split(var_dir=var, stream_limit=args.stream or scale["stream"])
    plan = world.stream_plan(
        records=split.stream, onset=args.onset, recovery=args.recovery, shift=args.shift
    )
    started = time.perf_counter()
    if args.champion_artifact:
        from mlcore import artifacts

        champion = artifacts.load_artifact(args.champion_artifact)
    else:
        champion = world.champion_train(
            records=split.base[: scale["train"]],
            epochs=scale["epochs"],
            dest=var / "champion",
            seed=args.seed,
        )
    train_seconds = time.perf_counter() - started
    plain = world.artifact_without_ood(source=Path(champion.path), dest=var / "champion-no-ood")
    beat.beat_entries_setup(seconds={"rollout": 5, "training": 10})
    arms = world.arms_all(
        gate_min_reviews=args.gate_min_reviews,
        gate_target=args.gate_target,
        gate_confidence=args.gate_confidence,
        retrain_every=args.retrain_every,
    )
    worlds = [
        world.world_create(
            arm=arms[key],
            artifact=champion if arms[key].ood_detector else plain,
            base_records=split.base[: scale["base"]],
            reviewers=args.reviewers,
            run=str(args.seed),
        )
        for key in args.arms
    ]
    return env, split, plan, worlds, train_seconds


def _drain(item_ids: list[int], timeout: float) -> float:
    """Wait until every streamed item has an outcome (or the timeout); returns seconds waited."""
    from reviewapp.models import Outcome

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if Outcome.objects.filter(item_id__in=item_ids).count() >= len(item_ids):
            break
        time.sleep(1)
    return time.monotonic() - started


def _stream(args, w, plan, port: int) -> tuple[list[int], list[float]]:
    """Submit the plan at `rate` items per second through the API."""
    from bench.replay_clients import submit_item

    item_ids, times, start = [], [], time.monotonic()
    for entry in plan:
        delay = start + entry.index / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        item_id = submit_item(
            port=port, slug=w.slug, token=w.token, key=entry.key, png=entry.image_bytes()
        )
        w.truth[item_id] = entry.label
        item_ids.append(item_id)
        times.append(time.time())
    return item_ids, times


def _training_cancel(project_id: int) -> None:
    """Cancel the arm's unfinished training runs (reported as such in the results)."""
    from reviewapp.models import RunState, TrainingRun
    from reviewapp.training import services as training

    active = TrainingRun.objects.filter(
        project_id=project_id, state__in=[RunState.QUEUED, RunState.RUNNING]
    )
    for run in active:
        try:
            training.training_run_cancel(run=run)
        except Exception:  # noqa: BLE001, S110 - it finished meanwhile: nothing to cancel
            pass


def run_arm(args, w, plan, split, scale: dict) -> dict:
    """Stream the plan into one arm's project with its reviewers (and admin), then account."""
    from bench import replay_metrics as metrics
    from bench.replay_clients import Reviewer, RolloutAdmin
    from bench.replay_world import LABELS, PASSWORD
    from reviewapp.models import Decision, TrainingRun

    stop = threading.Event()
    actors = [
        Reviewer(
            port=args.port,
            slug=w.slug,
            username=name,
            password=PASSWORD,
            truth=w.truth,
            labels=LABELS,
            accuracy=args.reviewer_accuracy,
            think=args.think_ms / 1000,
            seed=args.seed * 100 + i,
            stop=stop,
        )
        for i, name in enumerate(w.reviewers)
    ]
    if w.arm.admin:
        actors.append(
            RolloutAdmin(
                port=args.port,
                slug=w.slug,
                project_id=w.project_id,
                username=w.admin,
                password=PASSWORD,
                stop=stop,
            )
        )
    for actor in actors:
        actor.start()
    started = time.time()
    try:
        item_ids, times = _stream(args, w, plan, args.port)
        stream_seconds = time.time() - started
        drained = _drain(item_ids, scale["drain"])
    finally:
        stop.set()
        for actor in actors:
            actor.join(timeout=60)
    wall = time.time() - started
    _training_cancel(w.project_id)  # the stream is over: free the training worker
    rows = metrics.item_rows(entries=plan, item_ids=item_ids)
    onset = next((e.index for e in plan if e.shifted), None)
    recovery = next(
        (e.index for e in plan if onset is not None and e.index > onset and not e.shifted), None
    )
    runs = TrainingRun.objects.filter(project_id=w.project_id).order_by("created_at")
    reviewers = [a for a in actors if isinstance(a, Reviewer)]
    return {
        "arm": w.arm.key,
        "title": w.arm.title,
        "notes": w.arm.notes,
        "onset_index": onset,
        "recovery_index": recovery,
        "totals": metrics.summarize(rows),
        "phases": metrics.phases(rows),
        "series": metrics.series(rows, window=max(8, len(rows) // 24)),
        "human_decisions": Decision.objects.filter(item_id__in=item_ids, undone_at__isnull=True)
        .exclude(verdict="skip")
        .count(),
        "reviewer_wrong_answers": sum(r.stats.wrong for r in reviewers),
        "client_errors": [e for r in reviewers for e in r.stats.errors][:20],
        "admin_actions": [a.actions for a in actors if isinstance(a, RolloutAdmin)],
        "detection": metrics.detection(
            project_id=w.project_id,
            seen=metrics.seen_times(item_ids=item_ids, submit_times=times),
            submit_times=times,
            onset_index=onset,
            drift=w.arm.drift,
        ),
        "champions": metrics.champions(
            project_id=w.project_id, evaluation=split.evaluation, submit_times=times
        ),
        "training_runs": [
            {
                "trigger": r.trigger,
                "state": r.state,
                "items": len(r.snapshot),
                "from_item": sum(t <= r.created_at.timestamp() for t in times),
            }
            for r in runs
        ],
        "stages": metrics.stage_history(project_id=w.project_id, submit_times=times),
        "stream_seconds": stream_seconds,
        "drain_seconds": drained,
        "wall_seconds": wall,
        "throughput": len(item_ids) / wall,
    }


def _write_docs(results: list[dict], meta: dict, plot_path: Path) -> None:
    from bench import replay_metrics as metrics

    notes = "\n".join(f"- **{r['title']}**: {r['notes']}." for r in results)
    runs = "\n".join(
        f"- {r['title']}: stages {r['stages'] or 'unchanged'}; "
        f"training runs {r['training_runs'] or 'none'}; admin actions "
        f"{[a['what'] for acts in r['admin_actions'] for a in acts] or 'none'}; "
        f"detection: {r['detection'].get('alarm')}; "
        f"demotion: {r['detection'].get('demotion', 'none')}"
        for r in results
    )
    body = f"""Command: `{meta["command"]}` (seed {meta["seed"]}, {meta["date"]};
{meta["machine"]}).

{meta["stream"]} held-out digits (1000..1796 minus every 5th, which is kept to evaluate
champions) in index order; night shift (`mlcore.shifts.night`) from item {meta["onset"]} to item
{meta["recovery"]}; {meta["reviewers"]} simulated reviewers at {meta["accuracy"]:.0%} accuracy and
{meta["think_ms"]} ms per item; {meta["rate"]} items/s through the API. Champion v1: resnet18,
{meta["epochs"]} epochs on the demo's 1,000 base digits (trained in {meta["train_seconds"]:.0f} s).
The whole command, from an empty database to this table, took {meta["total_seconds"] / 60:.1f} min.
Solo-decision error = wrong labels among the items the model decided alone; final-outcome error =
wrong final labels among all decided items; champions' accuracy is on the never-streamed held-out
digits, as they are / night-shifted. Detection = the first DriftAlarm raised after the onset;
demotion = the automatic stage change that followed (drift alarm or audit). Other jobs shared
the 2 CPU cores during the run, so times are slower than on an idle machine.

{metrics.table(results)}
{metrics.phase_table(results)}
![automation rate and solo-decision error over the stream](img/{plot_path.name})

{notes}

{runs}
"""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(replace_section(text, HEADING, body).rstrip() + "\n")


def _stack(args, env: dict[str, str], *, drift: bool):
    """Start the system; without drift checks for the baselines (no check is ever enqueued)."""
    from bench.replay_stack import Stack

    name = "drift-on" if drift else "drift-off"
    settings = env if drift else {**env, "HANDOFF_DRIFT_CHECK_EVERY": "0"}
    stack = Stack(env=settings, port=args.port, log_dir=args.out / "logs" / name)
    stack.drift = drift
    stack.start()
    return stack


def main() -> None:
    args = _args()
    scale = SCALES["smoke" if args.smoke else "quick" if args.quick else "full"]
    started = time.time()
    env, split, plan, worlds, train_seconds = _prepare(args, scale)
    from bench import replay_metrics as metrics

    results, stack = [], None
    try:
        for w in worlds:
            if stack is None or stack.drift != w.arm.drift:
                if stack is not None:
                    stack.stop()
                stack = _stack(args, env, drift=w.arm.drift)
            print(f"replay.arm.start {w.arm.key} ({len(plan)} items)", flush=True)
            results.append(run_arm(args, w, plan, split, scale))
            print(f"replay.arm.done {w.arm.key} {json.dumps(results[-1]['totals'])}", flush=True)
    finally:
        if stack is not None:
            stack.stop()
    meta = {
        "command": command_line(),
        "seed": args.seed,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_summary(),
        "stream": len(plan),
        "onset": results[0]["onset_index"],
        "recovery": results[0]["recovery_index"],
        "reviewers": args.reviewers,
        "accuracy": args.reviewer_accuracy,
        "think_ms": args.think_ms,
        "rate": args.rate,
        "epochs": scale["epochs"],
        "train_seconds": train_seconds,
        "total_seconds": time.time() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, default=str)
    )
    plot_path = (args.out if args.no_write else ROOT / "docs" / "img") / "replay.png"
    metrics.plot(results, onset=meta["onset"], recovery=meta["recovery"], path=plot_path)
    if not args.no_write:
        _write_docs(results, meta, plot_path)
    print(metrics.table(results))
    print(f"total {meta['total_seconds']:.0f} s; results in {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
