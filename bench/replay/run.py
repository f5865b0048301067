"""One replay run inside the harness process (after ``django.setup()``): the world, the running
system, the stream, the simulated people, and the accounting per arm."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from bench.harness import ROOT, seeding
from bench.harness.docs import command_line
from bench.harness.machine import machine_summary
from bench.harness.processes import ProcessGroup, http_wait
from bench.harness.servers import (
    celery_beat_command,
    celery_worker_command,
    gunicorn_command,
    worker_ready,
)
from bench.replay import metrics, report, world
from bench.replay.clients import Reviewer, RolloutAdmin, submit_item
from config.celery import app
from mlcore import artifacts as ml_artifacts
from reviewapp import beat
from reviewapp.models import Decision, Outcome, RunState, TrainingRun
from reviewapp.training import services as training


def _prepare(args, scale: dict, var: Path):
    """The digits, the champion (and its no-OOD twin), one project per arm; an empty queue."""
    app.control.purge()
    split = world.digits_split(var_dir=var, stream_limit=args.stream or scale["stream"])
    plan = world.stream_plan(
        records=split.stream, onset=args.onset, recovery=args.recovery, shift=args.shift
    )
    started = time.perf_counter()
    if args.champion_artifact:
        champion = ml_artifacts.load_artifact(args.champion_artifact)
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
        review_order=args.review_order,
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
    return split, plan, worlds, train_seconds


def _drain(item_ids: list[int], timeout: float) -> float:
    """Wait until every streamed item has an outcome (or the timeout); returns seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if Outcome.objects.filter(item_id__in=item_ids).count() >= len(item_ids):
            break
        time.sleep(1)
    return time.monotonic() - started


def _stream(args, w, plan, port: int) -> tuple[list[int], list[float]]:
    """Submit the plan at `rate` items per second through the API."""
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
    stop = threading.Event()
    actors = [
        Reviewer(
            port=args.port,
            slug=w.slug,
            username=name,
            password=seeding.PASSWORD,
            truth=w.truth,
            labels=world.LABELS,
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
                password=seeding.PASSWORD,
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


def system_start(env: dict[str, str], *, drift: bool, port: int, logs: Path) -> ProcessGroup:
    """gunicorn, a default and a training worker, and beat; without drift checks for the
    baselines (no check is ever enqueued). Returns once the site answers and both workers are
    ready."""
    name = "drift-on" if drift else "drift-off"
    env = env if drift else {**env, "HANDOFF_DRIFT_CHECK_EVERY": "0"}
    group = ProcessGroup(logs / name)
    try:
        group.start("web", gunicorn_command(port=port, workers=2, timeout=120), env=env)
        workers = [
            group.start("worker", celery_worker_command(name="replay-default"), env=env),
            group.start(
                "training",
                celery_worker_command(name="replay-training", queue="training", prefetch=1),
                env=env,
            ),
        ]
        schedule = logs / name / "beat-schedule"
        group.start("beat", celery_beat_command(schedule=schedule, loglevel="WARNING"), env=env)
        http_wait(port=port, timeout=120)
        for worker in workers:
            worker_ready(worker, timeout=180)
    except BaseException:
        group.stop_all(timeout=30)
        raise
    return group


def replay(args, scale: dict, env: dict[str, str], started: float) -> None:
    """Run every arm against the running system, then write results.json, the plot, the docs."""
    split, plan, worlds, train_seconds = _prepare(args, scale, Path(env["HANDOFF_VAR_DIR"]))
    results, system, drift = [], None, None
    try:
        for w in worlds:
            if system is None or drift != w.arm.drift:
                if system is not None:
                    system.stop_all(timeout=30)
                drift = w.arm.drift
                system = system_start(env, drift=drift, port=args.port, logs=args.out / "logs")
            print(f"replay.arm.start {w.arm.key} ({len(plan)} items)", flush=True)
            results.append(run_arm(args, w, plan, split, scale))
            print(f"replay.arm.done {w.arm.key} {json.dumps(results[-1]['totals'])}", flush=True)
    finally:
        if system is not None:
            system.stop_all(timeout=30)
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
    report.plot(results, onset=meta["onset"], recovery=meta["recovery"], path=plot_path)
    if not args.no_write:
        report.docs_write(results, meta, plot_path)
    print(report.table(results))
    print(f"total {meta['total_seconds']:.0f} s; results in {args.out / 'results.json'}")
