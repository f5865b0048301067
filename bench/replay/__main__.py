"""The headline benchmark: a labeled digit stream, with a night shift in the middle, replayed end
to end through the running system under three policies (issue 9).

The stream (the demo's held-out digits, in index order) goes through the REST API (token auth)
-> a real Celery worker -> router -> review queues; simulated reviewers answer review tasks over
HTTP on the desk's JSON endpoints with a set accuracy and speed; beat runs the rollout engine's
and the retraining triggers' periodic tasks; a real `-Q training` worker retrains. Only this
harness knows the true digits. Arms: (a) everything manual, (b) a fixed 0.9 confidence threshold
with no gates, OOD flag, drift checks or retraining, (c) Handoff.

    .venv/bin/python -m bench.replay              # full run, writes docs/benchmarks.md + plot
    .venv/bin/python -m bench.replay --quick      # ~240 items, 2 training epochs
    .venv/bin/python -m bench.replay --smoke --no-write --out /tmp/replay   # tiny (tests)

    .venv/bin/python -m bench.replay --world fashion           # Fashion-MNIST, 10,000 items
    .venv/bin/python -m bench.replay --world fashion --quick   # 1,500 items
    .venv/bin/python -m bench.replay --world fashion --shift mymodule:my_camera

    .venv/bin/python -m bench.replay --ordering           # informative vs FIFO review order
    .venv/bin/python -m bench.replay --arms handoff --review-order fifo   # the live arm, FIFO

The Fashion-MNIST world (issue 18) runs arm (c) Handoff on the running system and computes the
all-manual, fixed-threshold and oracle arms from the predictions that run recorded
(``bench.replay.fashion_run``). It needs Debian's dataset-fashion-mnist package.

Needs PostgreSQL (own database, recreated) and Redis (CELERY_BROKER_URL, default db 6).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import django

from bench.harness import ROOT
from bench.harness.database import database_arguments, database_recreate, migrate

SCALES = {  # stream items, champion epochs and training digits, base items kept, drain timeout s
    "full": {"stream": None, "epochs": 3, "train": 1000, "base": 1000, "drain": 180},
    "quick": {"stream": 240, "epochs": 3, "train": 1000, "base": 1000, "drain": 90},
    "smoke": {"stream": 24, "epochs": 1, "train": 300, "base": 60, "drain": 60},
}
FASHION_SCALES = {  # stream items, base (champion v1) images, test images, epochs, drain s
    "full": {"stream": 10000, "base": 2000, "eval": 2000, "epochs": 6, "drain": 600},
    "quick": {"stream": 1500, "base": 2000, "eval": 1000, "epochs": 6, "drain": 300},
    "smoke": {"stream": 40, "base": 300, "eval": 100, "epochs": 1, "drain": 120},
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
    parser.add_argument("--world", choices=["digits", "fashion"], default="digits")
    parser.add_argument(
        "--stream", "--items", type=int, help="stream length (default: the scale's)"
    )
    parser.add_argument("--onset", type=float, default=0.3, help="shift on at this fraction")
    parser.add_argument("--recovery", type=float, default=0.7, help="shift off at this fraction")
    parser.add_argument(
        "--shift",
        help="the camera change: digits: night, grayscale, lowres or rotate (default night); "
        "fashion: module:function taking and returning a PIL image (default "
        "bench.replay.fashion_world:camera_change)",
    )
    parser.add_argument("--epsilon", type=float, default=0.01, help="fashion: error budget")
    parser.add_argument("--delta", type=float, default=0.05, help="fashion: 1 - confidence")
    parser.add_argument("--window", type=int, default=500, help="automatic decisions a window")
    parser.add_argument(
        "--rate", type=float, help="items submitted per second (default 3; fashion 6.5)"
    )
    parser.add_argument("--reviewers", type=int, help="default 2 (fashion 3)")
    parser.add_argument("--reviewer-accuracy", type=float, help="default 0.98 (fashion 0.97)")
    parser.add_argument("--think-ms", type=int, default=300, help="reviewer time per item")
    parser.add_argument("--gate-min-reviews", type=int, default=30)
    parser.add_argument("--gate-target", type=float, default=0.85)
    parser.add_argument("--gate-confidence", type=float, default=0.8)
    parser.add_argument(
        "--retrain-every", type=int, help="corrections per run (default 40; fashion 600)"
    )
    parser.add_argument("--champion-artifact", type=Path, help="skip training the champion")
    database_arguments(parser, name="handoff_bench_replay")
    parser.add_argument(
        "--review-order",
        choices=["informative", "fifo"],
        default="informative",
        help="the Handoff arms' desk order (project.review_order)",
    )
    parser.add_argument(
        "--ordering",
        action="store_true",
        help="instead: the review-order learning curves (bench.replay.ordering_curve)",
    )
    parser.add_argument(
        "--capacity", type=float, default=0.5, help="--ordering: decisions per arriving item"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[9], help="--ordering: seeds")
    parser.add_argument(
        "--ordering-epochs", type=int, default=4, help="--ordering: epochs per (re)training"
    )
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench-replay")
    parser.add_argument("--no-write", action="store_true", help="leave docs/ alone")
    args = parser.parse_args()
    fashion = args.world == "fashion"
    if args.reviewer_accuracy is None:
        args.reviewer_accuracy = 0.97 if fashion else 0.98
    # Fashion: 10,000 items in under 30 minutes, a retrain every few thousand items (each one
    # is minutes of CPU, and a new champion earns its thresholds afresh).
    for name, digits, fashion_default in (
        ("rate", 3.0, 6.5),
        ("reviewers", 2, 3),
        ("retrain_every", 40, 600),
    ):
        if getattr(args, name) is None:
            setattr(args, name, fashion_default if fashion else digits)
    if args.shift is None:
        args.shift = "bench.replay.fashion_world:camera_change" if fashion else "night"
    if not fashion and args.shift not in ("night", "grayscale", "lowres", "rotate"):
        parser.error("the digits world's --shift is night, grayscale, lowres or rotate")
    return args


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


def _fashion_ensure() -> None:
    """Install Debian's dataset-fashion-mnist when it is missing and we are root; else stop."""
    from mlcore.datasets import fashion_available

    if fashion_available():
        return
    if os.geteuid() == 0:
        print("== installing Debian's dataset-fashion-mnist", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"], env=env)  # noqa: S607
    if not fashion_available():
        raise SystemExit(
            "!! Fashion-MNIST missing: apt-get install dataset-fashion-mnist (as root)"
        )


def _ordering(args) -> None:
    """The review-order learning curves: offline, no database beyond Django's settings."""
    var = args.out / "ordering"
    var.mkdir(parents=True, exist_ok=True)
    _environment(args, f"sqlite:///{var / 'unused.sqlite3'}")
    django.setup()
    from bench.replay import ordering_curve  # reviewapp's models: after django.setup()

    result = ordering_curve.replay_ordering(args, var)
    (var / "results.json").write_text(json.dumps(result, indent=2, default=str))
    name = f"review-ordering-{args.shift}.png"
    plot_path = (var if args.no_write else ROOT / "docs" / "img") / name
    ordering_curve.plot(result["runs"], plot_path, shift=args.shift)
    if not args.no_write:
        ordering_curve.docs_write(result, args, plot_path)
    print(ordering_curve.table(result["runs"]))


def main() -> None:
    args = _args()
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    scale = (FASHION_SCALES if args.world == "fashion" else SCALES)[size]
    if args.world == "fashion" and args.out == ROOT / "var" / "bench-replay":
        args.out = ROOT / "var" / "bench-replay-fashion"
    if args.world == "fashion" and args.database == "handoff_bench_replay":
        args.database = "handoff_bench_replay_fashion"
    if args.world == "fashion":
        _fashion_ensure()
    if args.ordering:
        _ordering(args)
        return
    started = time.time()
    database_url = database_recreate(admin_url=args.admin_url, name=args.database)
    env = _environment(args, database_url)
    migrate(database_url)
    django.setup()
    if args.world == "fashion":
        from bench.replay import fashion_report, fashion_run  # the models: after django.setup()

        fashion_report.write(args, fashion_run.replay_fashion(args, scale, env, started))
        return
    from bench.replay import run  # the models: only once Django is set up

    run.replay(args, scale, env, started)


if __name__ == "__main__":
    main()
