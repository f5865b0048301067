"""Reviews spent where they teach most (issue 20, item 4): the digits stream with its shift
(night by default), a review desk that cannot keep up, and retraining every R human decisions:
once with the desk's informative order, once first in, first out. Reported: each retrained
champion's accuracy on the never-streamed digits against the human decisions spent so far.

    .venv/bin/python -m bench.replay --ordering [--capacity 0.5] [--retrain-every 40] [--seeds 9]

Offline, in this process: Handoff's own scoring and order (``reviewapp.review.ordering``:
margin uncertainty, diversity against the last 256 decided tasks of the same model and the
batch, ``sort_key``), its training path (``reviewapp.ml.train_and_save``, on the base set plus
every human label so far, as a training snapshot holds) and its predictor, over the stage work
of a supervised project (every item goes to a person; none is a random sample, so all of it is
ordered). Left out: the web processes, the worker, the gates and the challenger step
(each retrained model becomes champion at once). Why offline: on these streams the running
system's arm (c) stays in shadow, whose calibration reviews are first in, first out by design, so
the order never matters there; and its CPU retraining does not finish within a quick stream.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bench.harness.docs import command_line, marked_section_write
from bench.harness.machine import machine_summary
from bench.replay import report, world
from mlcore.predict import Predictor
from reviewapp import ml
from reviewapp.review import ordering

MARKER = "review-ordering"
ORDERS = ("informative", "fifo")
# The Fashion world's champion network at the digits' 32 px: on this CPU it trains in about half
# resnet18's time and is more accurate on the digits (95.6% vs 91.8% after 4 / 3 epochs).
PARAMS = {"arch": "small_cnn", "image_size": 32, "lr": 3e-3, "device": "cpu"}


@dataclass
class Task:
    """One queued item: where it is in the stream, what the desk orders it by."""

    entry: world.Entry
    path: str
    informativeness: float | None
    embedding: list[float] | None = None
    version: int = 1


@dataclass
class Arm:
    """One order's run: the queue, the labels so far, the champion and the curve."""

    order: str
    queue: list[Task] = field(default_factory=list)
    labelled: list[ml.TrainingRecord] = field(default_factory=list)
    references: list[list[float]] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    shifted_labelled: int = 0
    version: int = 1


def _stream_files(plan: list[world.Entry], folder: Path) -> list[str]:
    """The stream's images as the client would send them, as files (training reads paths)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in plan:
        path = folder / f"{entry.key}.png"
        if not path.exists():
            path.write_bytes(entry.image_bytes())
        paths.append(str(path))
    return paths


def _shifted_copies(records: list, folder: Path, shift: str) -> list[str]:
    """The evaluation digits under the stream's shift, as files."""
    paths = []
    for record in records:
        path = folder / f"{record.key}-{shift}.png"
        if not path.exists():
            with Image.open(record.path) as img:
                ml.shift_image(img.convert("RGB"), shift).save(path)
        paths.append(str(path))
    return paths


def _accuracy(predictor: Predictor, paths: list[str], truth: list[str]) -> float:
    said = [r.label for r in predictor.predict(paths, batch_size=128)]
    return sum(map(str.__eq__, said, truth)) / len(truth)


def _enqueue(arm: Arm, predictor: Predictor, entries: list, paths: list[str]) -> None:
    """Predict arriving items with the champion and queue them, scored as routing scores them."""
    results = predictor.predict(paths, batch_size=128)
    embeddings = [r.embedding for r in results]
    diversities = ordering.diversity_scores(embeddings, arm.references[-ordering.REFERENCE_SIZE :])
    for entry, path, result, diversity in zip(entries, paths, results, diversities, strict=True):
        score = ordering.informativeness(
            margin=ordering.margin_uncertainty(result.probabilities), diversity=diversity
        )
        arm.queue.append(Task(entry, path, score, result.embedding, arm.version))


def _next(arm: Arm) -> Task:
    """The task the desk serves next under the arm's order (the claim's rule)."""
    if arm.order == "fifo":
        task = min(arm.queue, key=lambda t: t.entry.index)
    else:
        task = min(
            arm.queue,
            key=lambda t: ordering.sort_key(
                priority=20,
                informativeness=t.informativeness,
                created_at=t.entry.index,
                pk=t.entry.index,
            ),
        )
    arm.queue.remove(task)
    return task


def _train(records: list, *, args, seed: int, dest: Path):
    if dest.exists():
        shutil.rmtree(dest)
    params = {**PARAMS, "epochs": args.ordering_epochs, "seed": seed}
    return ml.train_and_save(
        records=records, params=params, dest=dest, dataset_hash=f"ordering-{seed}"
    )


def _retrain(arm: Arm, *, base: list, args, seed: int, dest: Path, clean, shifted, truth):
    """Train on the base set plus the labels so far; the new champion and its curve point."""
    saved = _train([*base, *arm.labelled], args=args, seed=seed, dest=dest)
    predictor = Predictor.from_artifact(saved.path)
    arm.references = []  # diversity compares within one model version
    arm.curve.append(
        {
            "decisions": len(arm.labelled),
            "clean": _accuracy(predictor, clean, truth),
            "shifted": _accuracy(predictor, shifted, truth),
            "shifted_labelled": arm.shifted_labelled,
        }
    )
    print(f"ordering.{arm.order} seed={seed} {arm.curve[-1]}", flush=True)
    return predictor


def run_arm(order: str, *, args, seed: int, split, plan, paths, champion, evals, var: Path):
    """One order over the stream; returns the arm with its curve."""
    arm, rng = Arm(order=order), random.Random(seed)
    predictor = Predictor.from_artifact(champion.path)
    clean, shifted, truth = evals
    arm.curve.append(
        {
            "decisions": 0,
            "clean": _accuracy(predictor, clean, truth),
            "shifted": _accuracy(predictor, shifted, truth),
            "shifted_labelled": 0,
        }
    )
    arrivals, served, decisions, version = 2, 0.0, 0, 1
    budget = round(len(plan) * args.capacity)
    for start in range(0, len(plan), arrivals):
        chunk = slice(start, start + arrivals)
        _enqueue(arm, predictor, plan[chunk], paths[chunk])
        served += arrivals * args.capacity
        while decisions < min(int(served), budget) and arm.queue:
            task = _next(arm)
            label = task.entry.label
            if rng.random() >= args.reviewer_accuracy:
                label = rng.choice([x for x in world.LABELS if x != task.entry.label])
            arm.labelled.append(ml.TrainingRecord(path=task.path, label=label, key=task.entry.key))
            arm.shifted_labelled += task.entry.shifted
            if task.embedding and task.version == arm.version:  # decided: a reference now
                arm.references.append(task.embedding)
            decisions += 1
            if decisions % args.retrain_every == 0:
                version += 1
                arm.version = version
                predictor = _retrain(
                    arm,
                    base=split.base,
                    args=args,
                    seed=seed,
                    dest=var / f"{order}-v{version}",
                    clean=clean,
                    shifted=shifted,
                    truth=truth,
                )
    if decisions % args.retrain_every:  # the labels since the last run: one more
        _retrain(
            arm,
            base=split.base,
            args=args,
            seed=seed,
            dest=var / f"{order}-v{version + 1}",
            clean=clean,
            shifted=shifted,
            truth=truth,
        )
    return arm


def replay_ordering(args, var: Path) -> dict:
    """Both orders for each seed on the same stream and champion v1; returns the results."""
    started = time.time()
    split = world.digits_split(var_dir=var)
    plan = world.stream_plan(
        records=split.stream, onset=args.onset, recovery=args.recovery, shift=args.shift
    )
    paths = _stream_files(plan, var / "stream")
    shifted_folder = var / f"eval-{args.shift}"
    shifted_folder.mkdir(parents=True, exist_ok=True)
    evals = (
        [r.path for r in split.evaluation],
        _shifted_copies(split.evaluation, shifted_folder, args.shift),
        [r.label for r in split.evaluation],
    )
    runs = []
    for seed in args.seeds:
        champion = _train(split.base, args=args, seed=seed, dest=var / f"v1-{seed}")
        for order in ORDERS:
            arm = run_arm(
                order,
                args=args,
                seed=seed,
                split=split,
                plan=plan,
                paths=paths,
                champion=champion,
                evals=evals,
                var=var / f"seed-{seed}",
            )
            runs.append({"seed": seed, "order": order, "curve": arm.curve})
    onset = next(e.index for e in plan if e.shifted)
    return {
        "runs": runs,
        "meta": {
            "command": command_line(),
            "machine": machine_summary(),
            "date": time.strftime("%Y-%m-%d"),
            "stream": len(plan),
            "shift": args.shift,
            "onset": onset,
            "recovery": next(e.index for e in plan if e.index > onset and not e.shifted),
            "shifted": sum(e.shifted for e in plan),
            "eval": len(split.evaluation),
            "seconds": time.time() - started,
        },
    }


def table(runs: list[dict]) -> str:
    """Accuracy clean / shifted by human decisions, one column per (order, seed)."""
    columns = [(r["order"], r["seed"]) for r in runs]
    head = "| human decisions | " + " | ".join(f"{o} (seed {s})" for o, s in columns) + " |"
    rows = [head, "| --- |" + " --- |" * len(columns)]
    by = {(r["order"], r["seed"]): {p["decisions"]: p for p in r["curve"]} for r in runs}
    for decisions in sorted({p["decisions"] for r in runs for p in r["curve"]}):
        cells = []
        for key in columns:
            p = by[key].get(decisions)
            cells.append(
                "–"
                if p is None
                else f"{p['clean']:.1%} / {p['shifted']:.1%} ({p['shifted_labelled']} shifted)"
            )
        rows.append(f"| {decisions} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(runs: list[dict], path: Path, *, shift: str = "night") -> None:
    """Accuracy on the never-streamed digits (clean, shifted) against human decisions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = {"informative": "tab:blue", "fifo": "tab:orange"}
    for r in runs:
        xs = [p["decisions"] for p in r["curve"]]
        style = {"color": colours[r["order"]], "marker": "o", "alpha": 0.85}
        label = f"{r['order']} (seed {r['seed']})"
        left.plot(xs, [p["clean"] for p in r["curve"]], label=label, **style)
        right.plot(xs, [p["shifted"] for p in r["curve"]], label=label, **style)
    for ax, title in ((left, "clean held-out digits"), (right, f"{shift}-shifted held-out digits")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("human decisions so far")
        ax.grid(alpha=0.3)
    left.set_ylabel("champion accuracy")
    right.legend(fontsize=8)
    fig.suptitle("Retrained champions: informative order vs first in, first out", fontsize=10)
    fig.tight_layout()
    report.figure_save(fig, path)


def docs_write(result: dict, args, plot_path: Path) -> None:
    """The review-ordering section of docs/benchmarks.md (between its markers)."""
    meta, runs = result["meta"], result["runs"]
    body = f"""## Review order: informative vs first in, first out (issue 20, item 4)

Command: `{meta["command"]}` ({meta["date"]}; {meta["machine"]}; whole command
{meta["seconds"] / 60:.1f} min).

{meta["stream"]} held-out digits in index order, {meta["shift"]} shift from item
{meta["onset"]} to item {meta["recovery"]} ({meta["shifted"]} items). The desk decides
{args.capacity:.0%} as many items as arrive ({round(meta["stream"] * args.capacity)} human
decisions in all, one reviewer at {args.reviewer_accuracy:.0%} accuracy), so a queue builds
up and its order decides which items get labelled. Every {args.retrain_every} human decisions
(and once at the end) the champion is retrained from scratch (`small_cnn`, 32 px,
{args.ordering_epochs} epochs, seed as listed) on the 1,000 base digits plus every human
label so far, and replaces the last one. Cells: accuracy on the {meta["eval"]} never-streamed
digits, clean / shifted, and how many shifted items the human labels so far hold.

{table(runs)}

![champion accuracy against human decisions, both orders](img/{plot_path.name})

How it runs: see `bench/replay/ordering_curve.py`'s docstring: offline, with Handoff's own
scoring, order and training path, over a supervised project's stage work; not the running
system's processes, gates or challenger step.
"""
    marked_section_write(MARKER, body)
