"""Command line: python -m mlcore train | predict | evaluate | export | demo-data."""

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train on DIR/<label>/<image> and write an artifact")
    p.add_argument("--data", required=True, help="folder with one sub-folder per label")
    p.add_argument("--out", required=True, help="artifact directory to create (must not exist)")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", type=int, default=32, help="input size in pixels")
    p.add_argument("--resize", default="squish", choices=["crop", "pad", "squish"])
    p.add_argument("--pad-mode", default="zeros", choices=["zeros", "border", "reflection"])
    p.add_argument("--augment", default="none", choices=["none", "default"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", default="2e-3", help="learning rate, or 'find' for lr_find")
    p.add_argument("--valid-pct", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--weights", default=None, help="local weights file for the backbone")
    p.add_argument("--device", default=None)
    p.add_argument("--schedule", default="one_cycle", choices=["one_cycle", "fine_tune"])


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict images with an artifact")
    p.add_argument("--artifact", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("images", nargs="+")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics and confusion matrix on DIR/<label>/<image>")
    p.add_argument("--artifact", required=True)
    p.add_argument("--data", required=True)
    p.add_argument(
        "--split",
        default="valid",
        choices=["valid", "all"],
        help="valid: only items in the artifact's validation split (keys = content hashes)",
    )
    p.add_argument("--confusion", default="confusion_matrix.png", help="output .png or .svg")
    p.add_argument("--device", default="cpu")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export an artifact to an edge bundle (ONNX + parity)")
    p.add_argument("--format", default="onnx", choices=["onnx"])
    p.add_argument("--data", required=True, help="DIR/<label>/<image>: parity on its valid split")
    p.add_argument("--policy", default=None, help="JSON file: the rollout policy in force")
    p.add_argument("--limit", type=int, default=1000, help="at most this many parity images")
    p.add_argument("artifact")
    p.add_argument("dest", help="bundle directory to create (must not exist)")


def _add_demo(sub) -> None:
    p = sub.add_parser("demo-data", help="render scikit-learn's digits as PNG files")
    p.add_argument("dest")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m mlcore", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_predict, _add_evaluate, _add_export, _add_demo):
        add(sub)
    return parser


def _print_progress(progress) -> None:
    loss = "" if progress.train_loss is None else f" loss {progress.train_loss:.4f}"
    eta = "" if progress.eta_seconds is None else f" eta {progress.eta_seconds:.0f}s"
    where = f"epoch {progress.epoch + 1}/{progress.epochs} {progress.fraction:.0%}"
    _err(f"[{progress.phase}] {where}{loss}{eta}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train and save an artifact."""
    # Deferred in every command: torch (and here fastai) load only for the command that runs,
    # so `--help` and argument errors answer at once.
    from mlcore.artifacts import save_artifact
    from mlcore.data import records_from_folder
    from mlcore.train import TrainConfig, train

    config = TrainConfig(
        arch=args.arch,
        epochs=args.epochs,
        image_size=args.size,
        resize_method=args.resize,
        pad_mode=args.pad_mode,
        augment=args.augment,
        batch_size=args.batch_size,
        lr=None if args.lr == "find" else float(args.lr),
        valid_pct=args.valid_pct,
        seed=args.seed,
        weights_path=args.weights,
        device=args.device,
        schedule=args.schedule,
    )
    model = train(records_from_folder(args.data), config, on_progress=_print_progress)
    artifact = save_artifact(model, args.out)
    _out(json.dumps({"artifact": str(artifact.path), "sha256": artifact.sha256, **model.metrics}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Print one prediction per image."""
    # Deferred: torch loads only when a prediction is asked for.
    from mlcore.predict import Predictor

    predictor = Predictor.from_artifact(args.artifact, device=args.device)
    for path, result in zip(args.images, predictor.predict(args.images), strict=True):
        if args.json:
            _out(json.dumps({"image": path, **result.to_dict()}))
        else:
            flag = " OUT-OF-DOMAIN" if result.is_ood else ""
            _out(
                f"{path}\t{result.label}\t{result.confidence:.3f}\tood={result.ood_score:.3f}{flag}"
            )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print metrics and write the confusion-matrix plot."""
    # Deferred: torch loads only when an evaluation is asked for.
    from mlcore.data import is_validation, records_from_folder
    from mlcore.evaluate import evaluate_records
    from mlcore.interpret import plot_confusion_matrix
    from mlcore.predict import Predictor

    predictor = Predictor.from_artifact(args.artifact, device=args.device)
    records = records_from_folder(args.data)
    if args.split == "valid":
        cfg = predictor.metadata.get("train_config", {})
        seed, pct = cfg.get("seed", 42), cfg.get("valid_pct", 0.2)
        records = [r for r in records if is_validation(r.key, seed=seed, valid_pct=pct)]
    report = evaluate_records(predictor, records)
    out = Path(args.confusion)
    fmt = "svg" if out.suffix.lower() == ".svg" else "png"
    out.write_bytes(plot_confusion_matrix(report["confusion_matrix"], predictor.labels, fmt=fmt))
    summary = {k: v for k, v in report.items() if k not in ("per_class", "confusion_matrix")}
    _out(json.dumps({**summary, "confusion_plot": str(out)}, indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export an artifact to an ONNX edge bundle; a failed parity check prints its cases."""
    # Deferred: torch, the ONNX exporter and onnxruntime load only for this command.
    from mlcore.artifacts import load_artifact
    from mlcore.data import is_validation, records_from_folder
    from mlcore.export import ExportError, ParityError, bundle_export

    cfg = load_artifact(args.artifact).metadata.get("train_config", {})
    seed, pct = cfg.get("seed", 42), cfg.get("valid_pct", 0.2)
    records = [
        r for r in records_from_folder(args.data) if is_validation(r.key, seed=seed, valid_pct=pct)
    ]
    policy = json.loads(Path(args.policy).read_text()) if args.policy else {}
    images = [str(r.path) for r in records[: args.limit]]
    try:
        bundle = bundle_export(
            artifact_path=args.artifact, dest=args.dest, images=images, policy=policy
        )
    except ParityError as exc:
        _err(f"error: {exc}")
        _out(json.dumps(exc.report.summary(), indent=2))
        return 3
    except ExportError as exc:
        _err(f"error: {exc}")
        return 2
    parity = {k: v for k, v in bundle.parity.items() if k != "cases"}
    summary = {"bundle": str(bundle.path), "sha256": bundle.sha256, "bytes": bundle.size_bytes}
    _out(json.dumps({**summary, "parity": parity}, indent=2))
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Render the digits demo data set."""
    # Deferred: torch (through mlcore.data) and scikit-learn load only for this command.
    from mlcore.demo import render_digits

    records = render_digits(args.dest, size=args.size, limit=args.limit)
    _out(f"{len(records)} images under {args.dest}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "predict": cmd_predict,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "demo-data": cmd_demo_data,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Deferred until the arguments parsed: these modules import torch.
    from mlcore.artifacts import ArtifactError
    from mlcore.images import ImageLoadError

    try:
        return COMMANDS[args.command](args)
    except (ArtifactError, ImageLoadError, FileNotFoundError, ValueError) as exc:
        _err(f"error: {exc}")
        return 2
