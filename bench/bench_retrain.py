"""Retraining benchmark: click -> registered candidate, and overhead over plain fastai training.

    .venv/bin/python bench/bench_retrain.py --items 400 --epochs 2

Sets up a throwaway SQLite database and filesystem broker under a temp folder, seeds a project
with scikit-learn digits as its base set, starts a real `celery worker -Q training -c 1`, then
times what the Retrain button does (``training_run_request``) until the ModelVersion exists.
The baseline trains plain fastai (DataLoaders, ``vision_learner``, ``fit_one_cycle``) on the
very same snapshot records and settings in this process, while the worker sits idle.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.processes import ProcessGroup
from bench.harness.servers import celery_worker_command, worker_ready


def _environment(workdir: Path) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "HANDOFF_BROKER_DIR": str(workdir / "broker"),
        "MEDIA_ROOT": str(workdir / "media"),
        "ARTIFACTS_ROOT": str(workdir / "artifacts"),
        "HANDOFF_VAR_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    for folder in ("broker/queue", "broker/processed", "media", "artifacts"):
        (workdir / folder).mkdir(parents=True, exist_ok=True)
    return env


def _start_worker(workdir: Path) -> ProcessGroup:
    """A `celery worker -Q training -c 1` on the run's database and broker, once ready."""
    group = ProcessGroup(workdir / "logs")
    command = celery_worker_command(name="bench-training", queue="training", prefetch=1)
    try:
        worker_ready(group.start("worker", command, env=dict(os.environ)), timeout=120)
    except BaseException:
        group.stop_all()
        raise
    return group


def _seed(items: int):
    from django.core.management import call_command

    from bench.harness import seeding  # the models: after django.setup()
    from reviewapp import ml
    from reviewapp.models import Project

    call_command("migrate", verbosity=0)
    records = ml.render_demo_digits(Path(os.environ["HANDOFF_VAR_DIR"]) / "digits")[:items]
    Project.objects.filter(slug="bench").delete()
    project = Project.objects.create(
        slug="bench", name="Retrain digits", labels=[str(d) for d in range(10)], gate_min_reviews=5
    )
    seeding.base_items_ingest(project=project, records=records)
    return project


def _platform_run(project, params: dict) -> tuple[float, object]:
    from reviewapp.models import ModelVersion, RunState, RunTrigger, TrainingRun
    from reviewapp.training import services as training

    started = time.perf_counter()
    run = training.training_run_request(project=project, trigger=RunTrigger.MANUAL, params=params)
    while not ModelVersion.objects.filter(training_run=run).exists():
        state = TrainingRun.objects.get(pk=run.pk).state
        if state in (RunState.FAILED, RunState.CANCELLED):
            raise SystemExit(f"run {run.pk} {state}: {TrainingRun.objects.get(pk=run.pk).error}")
        time.sleep(0.05)
    return time.perf_counter() - started, TrainingRun.objects.get(pk=run.pk)


def _plain_fastai(run, params: dict) -> float:
    """Plain fastai on the same snapshot: DataLoaders, vision_learner, fit_one_cycle."""
    from fastai.callback.progress import ProgressCallback
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401 (patches Learner)
    from fastai.metrics import accuracy
    from fastai.vision.learner import vision_learner

    from mlcore.data import Record
    from mlcore.loaders import build_dataloaders
    from mlcore.nets import ARCHITECTURES
    from reviewapp.models import Item

    items = Item.objects.in_bulk([item_id for item_id, _ in run.snapshot])
    records = [
        Record(path=items[i].image.path, label=label, key=items[i].key) for i, label in run.snapshot
    ]
    started = time.perf_counter()
    dls = build_dataloaders(
        records, image_size=params["image_size"], batch_size=params["batch_size"], seed=42
    )
    learn = vision_learner(dls, ARCHITECTURES[params["arch"]], pretrained=False, metrics=accuracy)
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, ProgressCallback)])
    learn.logger = lambda _: None
    learn.fit_one_cycle(params["epochs"], params["lr"])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args()
    params = {"arch": "resnet18", "epochs": args.epochs, "image_size": args.image_size}
    params |= {"batch_size": 64, "lr": 2e-3, "device": "cpu"}
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        workdir = Path(tmp)
        _environment(workdir)
        import django

        django.setup()
        project = _seed(args.items)
        group = _start_worker(workdir)
        try:
            click_to_candidate, run = _platform_run(project, params)
        finally:
            group.stop_all(timeout=30)
        plain = _plain_fastai(run, params)
    result = {
        "items": args.items,
        "params": params,
        "click_to_candidate_s": round(click_to_candidate, 2),
        "plain_fastai_s": round(plain, 2),
        "overhead_ratio": round(click_to_candidate / plain - 1, 3),
        "train_seconds_in_worker": run.metrics.get("train_seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
