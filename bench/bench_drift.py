"""Drift monitoring: items from the onset of each shift to the first alarm, and the alarms that
2,000 unshifted items raise, with the demo's champion and the production settings.

Run from the repository root (a throwaway test database is created and dropped):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/handoff \
        .venv/bin/python -m bench.bench_drift --write

Items are held-out digits streamed by `reviewapp.simulation` (what `manage.py simulate_stream`
runs) through the normal ingest path; each is predicted in this process by the worker's code
(`prediction_service._predict_with` + `prediction_route`) and a drift check runs every
HANDOFF_DRIFT_CHECK_EVERY items, as the worker would enqueue it, so the counts are exact.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.harness.database import throwaway_database
from bench.harness.docs import command_line, marked_section_write
from bench.harness.machine import machine_summary
from bench.harness.stats import median

SHIFTS = ("night", "grayscale", "lowres", "rotate")


def _champion(tmp: Path, epochs: int):
    from reviewapp import ml
    from reviewapp.demo import seed as demo

    records = demo.demo_records()[: demo.BASE_COUNT]
    return ml.train_and_save(
        records=records,
        params={"epochs": epochs, "device": "cpu"},
        dest=tmp / "champion",
        dataset_hash="bench-drift",
    )


def _project(slug: str, artifact):
    from bench.harness import seeding  # the models: after django.setup()
    from reviewapp.models import Stage

    return seeding.project_with_champion(slug=slug, artifact=artifact, stage=Stage.AUTOMATED)


def stream(project, version, *, shift: str, after: int, count: int, seed: int, rate: float):
    """Stream and check; returns (items from onset to first alarm or None, alarms, check ms)."""
    from django.conf import settings

    from reviewapp.demo import stream as simulation
    from reviewapp.monitoring import services as monitoring

    every = settings.HANDOFF_DRIFT_CHECK_EVERY
    state = {"n": 0, "alarm_at": None, "alarms": [], "check_ms": []}

    def on_item(item, shifted):
        from reviewapp.intake import prediction_service

        prediction = prediction_service._predict_with(item=item, version=version)
        prediction_service.prediction_route(prediction=prediction)
        state["n"] += 1
        if state["n"] % every == 0:
            started = time.perf_counter()
            opened = monitoring.drift_check_run(project=project)
            state["check_ms"].append((time.perf_counter() - started) * 1000)
            state["alarms"] += opened
            if opened and state["alarm_at"] is None:
                state["alarm_at"] = state["n"]
                return after >= count  # a shifted stream stops at its first alarm
        return True

    simulation.stream_simulate(
        project=project,
        shift=shift,
        after=after,
        rate=rate,
        count=count,
        seed=seed,
        tag=f"bench{seed}",
        enqueue_prediction=False,
        on_item=on_item,
    )
    delay = None if state["alarm_at"] is None else state["alarm_at"] - after
    return delay, state["alarms"], state["check_ms"]


def unshifted_extremes(project) -> dict[str, tuple[float, float]]:
    """Per statistic over every unshifted check: (largest value, smallest p-value)."""
    from django.db.models import Max, Min

    from reviewapp.models import DriftCheck

    rows = DriftCheck.objects.filter(project=project).values("statistic")
    rows = rows.annotate(value=Max("value"), p=Min("p_value"))
    return {row["statistic"]: (row["value"], row["p"]) for row in rows}


def signal_cost_ms(artifact, n: int = 200) -> tuple[float, float]:
    """(prediction ms per image incl. drift signals, of which drift signals) on held-out digits."""
    from mlcore import drift as ml_drift
    from mlcore import reference as ml_reference
    from reviewapp import ml
    from reviewapp.demo import stream as simulation

    images = [ml.load_image(r.path) for r in simulation.held_out_records()[:n]]
    predictor = ml.get_predictor(artifact_path=str(artifact.path), sha256=artifact.sha256)
    predictor.predict(images[:8])
    started = time.perf_counter()
    for image in images:
        predictor.predict([image])
    total = (time.perf_counter() - started) * 1000 / n
    features = predictor.features(images[:1])
    started = time.perf_counter()
    for image in images:
        ml_reference.image_statistics(image)
        ml_drift.project_embeddings(features)
    return total, (time.perf_counter() - started) * 1000 / n


def _table(args, shifted: list, clean: tuple, extremes: dict, costs) -> str:
    delay_rows = "\n".join(
        f"| {shift} | {rate:g} | {seed} | {delay if delay is not None else 'no alarm'} | "
        f"{', '.join(sorted({a.statistic for a in alarms})) or '-'} |"
        for shift, rate, seed, delay, alarms in shifted
    )
    clean_delay, clean_alarms, check_ms = clean
    extreme_rows = "\n".join(
        f"| {stat} | {value:.4g} | {p:.2g} |" for stat, (value, p) in sorted(extremes.items())
    )
    return f"""## Drift monitoring (issue 8)

`{command_line()}` on PostgreSQL; {machine_summary()}.
Demo champion (resnet18, {args.epochs} epochs on digits 0..999, CPU); held-out digits
1200..1796 streamed through ingest; window {args.window} items, a check every {args.every}
items, family false-alarm target {args.false_alarm} over {args.horizon} items (Bonferroni over
8 statistics x 2 windows x {args.horizon // args.every} looks). The shift starts after
{args.after} unshifted items; "items to alarm" counts items from the onset to the check that
opened the first alarm (checks run every {args.every} items, so it is a multiple of that).
Measured on 2 CPU cores shared with other jobs: timings are a lower bound.

| shift | rate | seed | items from onset to alarm | statistics alarming |
| --- | ---: | ---: | ---: | --- |
{delay_rows}

{args.clean} unshifted items (held-out images re-used under distinct client keys: ingest is
content-addressed, so each copy carries its key in a PNG text chunk): **{len(clean_alarms)}
alarms**. Drift check: median {median(check_ms):.0f} ms per check ({len(check_ms)} checks).
Prediction: {costs[0]:.1f} ms per image (batch of 1), of which the drift signals (image
statistics + embedding projection) take {costs[1]:.2f} ms.

Largest value and smallest p-value each statistic reached over the unshifted checks (an alarm
needs p below the per-test level and the value at or above its floor, `mlcore.drift.MIN_EFFECT`;
ood_rate is tested against 3x the reference rate, at least +10 points):

| statistic | largest value | smallest p |
| --- | ---: | ---: |
{extreme_rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--after", type=int, default=200)
    parser.add_argument("--max-shifted", type=int, default=600)
    parser.add_argument("--clean", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rates", default="1.0,0.5")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("set DATABASE_URL (or --database-url) to a PostgreSQL server")
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp_name:
        tmp = Path(tmp_name)
        folders = {"MEDIA_ROOT": str(tmp / "media"), "ARTIFACTS_ROOT": str(tmp / "artifacts")}
        with throwaway_database(args.database_url, **folders):
            body = run(args, tmp)
    print(body)
    if args.write:
        marked_section_write("drift", body)


def run(args, tmp: Path) -> str:
    """Train the champion, stream every shift and the unshifted run; the markdown section."""
    from django.conf import settings

    args.window, args.every = settings.HANDOFF_DRIFT_WINDOW, settings.HANDOFF_DRIFT_CHECK_EVERY
    args.false_alarm, args.horizon = (
        settings.HANDOFF_DRIFT_FALSE_ALARM,
        settings.HANDOFF_DRIFT_HORIZON_ITEMS,
    )
    artifact = _champion(tmp, args.epochs)
    shifted = []
    for rate in [float(r) for r in args.rates.split(",")]:
        for shift in SHIFTS:
            for seed in range(args.seeds):
                project, version = _project(f"{shift}-{rate:g}-{seed}", artifact)
                delay, alarms, _ = stream(
                    project,
                    version,
                    shift=shift,
                    after=args.after,
                    count=args.after + args.max_shifted,
                    seed=seed,
                    rate=rate,
                )
                print(f"{shift} rate={rate} seed={seed}: {delay} items to alarm", flush=True)
                shifted.append((shift, rate, seed, delay, alarms))
    project, version = _project("unshifted", artifact)
    clean = stream(
        project, version, shift="night", after=args.clean, count=args.clean, seed=99, rate=1.0
    )
    print(f"unshifted: {len(clean[1])} alarms", flush=True)
    return _table(args, shifted, clean, unshifted_extremes(project), signal_cost_ms(artifact))


if __name__ == "__main__":
    main()
