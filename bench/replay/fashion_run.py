"""One Fashion-MNIST replay inside the harness process (after ``django.setup()``): champion v1
on the base set, arm (c) Handoff on the running system, then the offline arms (a), (b) and (d)
from the predictions that run recorded.

The stream goes through the REST API with the Python client (``handoff_client``), predictions
run on a real Celery worker, simulated reviewers answer on the desk's JSON endpoints, beat runs
the periodic tasks and a ``-Q training`` worker retrains. Only this module knows the truth.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from bench.harness import ROOT, seeding
from bench.replay import fashion_world, metrics, offline, run
from bench.replay.clients import Reviewer, RolloutAdmin
from config.celery import app
from mlcore import artifacts as ml_artifacts
from mlcore.datasets import FASHION_CLASSES
from reviewapp import beat, ml
from reviewapp.accounts.services import groups_ensure
from reviewapp.api.auth import api_client_create
from reviewapp.models import Alias, AliasAssignment, Decision, Prediction, Project, TrainingRun
from reviewapp.rollout import ltt, versions

sys.path.insert(0, str(ROOT / "clients" / "python"))  # the client runs from the source tree
from handoff_client import Client  # noqa: E402

LABELS = list(FASHION_CLASSES)
CHAMPION_PARAMS = {"arch": "small_cnn", "image_size": 28, "lr": 3e-3, "device": "cpu"}


def budget_settings(*, epsilon: float, delta: float) -> dict[str, Any]:
    """The project's error budget in whatever fields this version of Handoff has: ε and δ in
    any ``error_budget``/``epsilon``/``delta`` fields, and today's all-or-nothing gate asked
    for agreement 1−ε with confidence 1−δ."""
    names = {f.name for f in Project._meta.get_fields()}
    settings = {"gate_target_agreement": 1 - epsilon, "gate_confidence": 1 - delta}
    for name in names:
        if "delta" in name or name.endswith("_confidence") and "budget" in name:
            settings[name] = delta
        elif "error_budget" in name or "epsilon" in name:
            settings[name] = epsilon
    return {k: v for k, v in settings.items() if k in names}


def project_create(*, args, base: list, artifact, run_name: str) -> run.world.World:
    """Arm (c)'s project from shadow: the labels, the budget, the base set, champion v1, its
    reviewers, admin and API token."""
    reviewer_group, admin_group = groups_ensure()
    slug = f"fashion-handoff-{run_name}"
    settings = {
        "stage": "shadow",
        "auto_promote_after_hours": 0.0,
        "retrain_every_corrections": args.retrain_every,
        "drift_retrain": True,
        "gate_min_reviews": args.gate_min_reviews,
        "review_order": args.review_order,
        **budget_settings(epsilon=args.epsilon, delta=args.delta),
    }
    project = Project.objects.create(slug=slug, name="Replay Fashion-MNIST", labels=LABELS)
    Project.objects.filter(pk=project.pk).update(**settings)
    names = [f"{slug}-r{i}" for i in range(args.reviewers)]
    project.reviewers.add(*(seeding.user_create(name, reviewer_group) for name in names))
    admin = seeding.user_create(f"{slug}-admin", admin_group, staff=True)
    project.reviewers.add(admin)
    seeding.base_items_ingest(project=project, records=base)
    versions.champion_register(project=project, artifact=artifact, reason="replay: champion v1")
    _, token = api_client_create(name=f"{slug}-client", projects=[project])
    arm = run.world.Arm(key="handoff", title="(c) Handoff", settings=settings, admin=True)
    return run.world.World(arm, slug, project.pk, token, names, admin.username)


def _stream(args, w, plan: list, port: int) -> tuple[list[int], list[float]]:
    """Submit the plan at `rate` items per second through the Python client."""
    item_ids, times, start = [], [], time.monotonic()
    with Client(f"http://127.0.0.1:{port}", w.token, timeout=120) as client:
        for entry in plan:
            delay = start + entry.index / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            result = client.submit(w.slug, entry.image_bytes(), key=entry.key)
            w.truth[result.item.id] = entry.label
            item_ids.append(result.item.id)
            times.append(time.time())
    return item_ids, times


def champion_scores(*, project_id: int, item_ids: list[int]) -> dict[int, tuple[str, float]]:
    """Each item's (label, confidence) from the model that was champion when it predicted it
    (the first prediction when no champion's is found)."""
    spans = list(
        AliasAssignment.objects.filter(project_id=project_id, alias=Alias.CHAMPION).values_list(
            "model_version_id", "started_at", "ended_at"
        )
    )
    chosen: dict[int, tuple[str, float, bool]] = {}
    predictions = Prediction.objects.filter(item_id__in=item_ids).order_by("created_at", "pk")
    for item_id, version, at, label, confidence in predictions.values_list(
        "item_id", "model_version_id", "created_at", "label", "confidence"
    ):
        held = any(v == version and s <= at and (e is None or at < e) for v, s, e in spans)
        if item_id not in chosen or (held and not chosen[item_id][2]):
            chosen[item_id] = (label, confidence, held)
    return {item_id: (label, confidence) for item_id, (label, confidence, _) in chosen.items()}


def champions_accuracy(*, project_id: int, split, shift, submit_times: list[float]) -> list[dict]:
    """Each champion's accuracy on the never-streamed test set, as it is and camera-changed."""
    truth = [r.label for r in split.evaluation]
    folder = Path(split.evaluation[0].path).parent.parent / "test-shifted"
    folder.mkdir(parents=True, exist_ok=True)
    shifted = []
    for r in split.evaluation:
        path = folder / Path(r.path).name
        if not path.exists():
            with Image.open(r.path) as img:
                shift(img).save(path, format="PNG")
        shifted.append(str(path))
    held = AliasAssignment.objects.filter(project_id=project_id, alias=Alias.CHAMPION)
    out = []
    for a in held.select_related("model_version").order_by("started_at"):
        path = a.model_version.artifact_path
        clean, _ = ml.predict_paths(artifact_path=path, paths=[r.path for r in split.evaluation])
        dark, _ = ml.predict_paths(artifact_path=path, paths=shifted)
        out.append(
            {
                "version": a.model_version.number,
                "from_item": sum(t <= a.started_at.timestamp() for t in submit_times),
                "accuracy_clean": sum(map(str.__eq__, clean, truth)) / len(truth),
                "accuracy_shifted": sum(map(str.__eq__, dark, truth)) / len(truth),
                "eval_items": len(truth),
            }
        )
    return out


def arms_account(*, args, w, plan: list, item_ids: list[int]) -> dict[str, dict]:
    """Per arm: automated flags and solo-rightness by stream position, then the summaries.
    (c) is what the running system decided; (a), (b), (d) are computed from the predictions of
    the champions it had (items it never predicted count as human decisions)."""
    rows = metrics.item_rows(entries=plan, item_ids=item_ids)
    scores = champion_scores(project_id=w.project_id, item_ids=item_ids)
    scored = [
        offline.Scored(e.index, *scores[i], e.label)
        for e, i in zip(plan, item_ids, strict=True)
        if i in scores
    ]
    oracle = offline.oracle_thresholds(scored, args.epsilon)
    per_class = ltt.min_labels(epsilon=args.epsilon, level=args.delta / len(LABELS))
    pooled = ltt.min_labels(epsilon=args.epsilon, level=args.delta)
    paid = {
        "paid": offline.paid_for(scored, oracle, per_class),
        "paid_pooled": offline.paid_for(scored, oracle, pooled, pooled=True),
    }
    flags = {key: [False] * len(plan) for key in ("manual", "threshold", "oracle", *paid)}
    right = [r.label == r.truth for r in rows]  # (c)'s outcome labels
    offline_right = [False] * len(plan)
    for s, auto_b, auto_d in zip(
        scored,
        offline.automated_at(scored, 0.9),
        offline.automated_by_thresholds(scored, oracle),
        strict=True,
    ):
        flags["threshold"][s.index], flags["oracle"][s.index] = auto_b, auto_d
        offline_right[s.index] = s.right
    for key, automated in paid.items():
        for s, auto in zip(scored, automated, strict=True):
            flags[key][s.index] = auto
    handoff = [r.status == "auto" for r in rows]
    human = Decision.objects.filter(item_id__in=item_ids, undone_at__isnull=True)
    arms = {
        "manual": (flags["manual"], offline_right, len(plan)),
        "threshold": (flags["threshold"], offline_right, None),
        "handoff": (handoff, right, human.exclude(verdict="skip").count()),
        "oracle": (flags["oracle"], offline_right, None),
        "paid": (flags["paid"], offline_right, None),
        "paid_pooled": (flags["paid_pooled"], offline_right, None),
    }
    bounds = fashion_world.phase_bounds(len(plan))
    out = {}
    for key, (auto, ok, humans) in arms.items():
        everything = range(len(plan))
        solo = [ok[i] for i in everything if auto[i]]
        ood_start, ood_end = bounds["ood-burst"]
        out[key] = {
            **offline.stream_summary(auto, ok, everything),
            "window": offline.worst_window(solo, args.window),
            "human_decisions": humans if humans is not None else len(plan) - sum(auto),
            "phases": {
                name: offline.stream_summary(auto, ok, range(*span))
                for name, span in bounds.items()
            },
            "after_onset": offline.automating_after_onset(auto, *bounds["camera"]),
            "ood_auto": sum(auto[ood_start:ood_end]),
            "ood_items": ood_end - ood_start,
            "series": offline.series(auto, ok, max(10, len(plan) // 30)),
        }
    out["oracle"]["thresholds"] = oracle
    out["paid"]["needed"], out["paid_pooled"]["needed"] = per_class, pooled
    out["handoff"]["queued"] = sum(r.status == "queued" for r in rows)
    out["handoff"]["pending"] = sum(r.status == "pending" for r in rows)
    out["handoff"]["predicted"] = len(scored)
    return out


def run_handoff(args, w, split, scale: dict) -> dict:
    """Stream into arm (c)'s project with its reviewers and admin; then account all arms."""
    stop = threading.Event()
    actors: list[threading.Thread] = [
        Reviewer(
            port=args.port,
            slug=w.slug,
            username=name,
            password=seeding.PASSWORD,
            truth=w.truth,
            labels=LABELS,
            accuracy=args.reviewer_accuracy,
            think=args.think_ms / 1000,
            seed=args.seed * 100 + i,
            stop=stop,
        )
        for i, name in enumerate(w.reviewers)
    ]
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
        item_ids, times = _stream(args, w, split.stream, args.port)
        stream_seconds = time.time() - started
        drained = run._drain(item_ids, scale["drain"])
    finally:
        stop.set()
        for actor in actors:
            actor.join(timeout=60)
    wall = time.time() - started
    run._training_cancel(w.project_id)
    camera_start = fashion_world.phase_bounds(len(split.stream))["camera"][0]
    runs = TrainingRun.objects.filter(project_id=w.project_id).order_by("created_at")
    return {
        "arms": arms_account(args=args, w=w, plan=split.stream, item_ids=item_ids),
        "champions": champions_accuracy(
            project_id=w.project_id,
            split=split,
            shift=fashion_world.shift_load(args.shift),
            submit_times=times,
        ),
        "detection": metrics.detection(
            project_id=w.project_id,
            seen=metrics.seen_times(item_ids=item_ids, submit_times=times),
            submit_times=times,
            onset_index=camera_start,
        ),
        "stages": metrics.stage_history(project_id=w.project_id, submit_times=times),
        "training_runs": [
            {"trigger": r.trigger, "state": r.state, "items": len(r.snapshot)} for r in runs
        ],
        "reviewer_wrong_answers": sum(a.stats.wrong for a in actors if isinstance(a, Reviewer)),
        "client_errors": [e for a in actors if isinstance(a, Reviewer) for e in a.stats.errors][
            :20
        ],
        "stream_seconds": stream_seconds,
        "drain_seconds": drained,
        "wall_seconds": wall,
        "throughput": len(item_ids) / wall,
    }


def champion_train(*, records: list, epochs: int, dest: Path, seed: int):
    """Champion v1: the small CNN on the base set (CPU)."""
    params = {**CHAMPION_PARAMS, "epochs": epochs, "seed": seed}
    return ml.train_and_save(
        records=records, params=params, dest=dest, dataset_hash=f"replay-fashion-{seed}"
    )


def replay_fashion(args, scale: dict, env: dict[str, str], started: float) -> dict:
    """The world, champion v1, arm (c) on the running system, the offline arms; returns the
    results (the caller writes them)."""
    var = Path(env["HANDOFF_VAR_DIR"])
    app.control.purge()
    split = fashion_world.fashion_split(
        var_dir=var,
        base=scale["base"],
        stream=args.stream or scale["stream"],
        evaluation=scale["eval"],
        shift=fashion_world.shift_load(args.shift),
        seed=args.seed,
    )
    clock = time.perf_counter()
    if args.champion_artifact:
        champion = ml_artifacts.load_artifact(args.champion_artifact)
    else:
        champion = champion_train(
            records=split.base, epochs=scale["epochs"], dest=var / "champion", seed=args.seed
        )
    train_seconds = time.perf_counter() - clock
    beat.beat_entries_setup(seconds={"rollout": 5, "training": 10})
    w = project_create(args=args, base=split.base, artifact=champion, run_name=str(args.seed))
    system = run.system_start(env, drift=True, port=args.port, logs=args.out / "logs")
    try:
        print(f"replay.fashion.start {len(split.stream)} items", flush=True)
        result = run_handoff(args, w, split, scale)
    finally:
        system.stop_all(timeout=30)
    result["meta"] = {
        "stream": len(split.stream),
        "base": len(split.base),
        "eval": len(split.evaluation),
        "phases": fashion_world.phase_bounds(len(split.stream)),
        "champion_metrics": champion.metadata.get("metrics", {}),
        "train_seconds": train_seconds,
        "total_seconds": time.time() - started,
        "settings": w.arm.settings,
    }
    return result
