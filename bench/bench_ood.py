"""Out-of-domain detection: AUROC per score for each near shift and for far-OOD photos.

Run from the repository root:  .venv/bin/python -m bench.bench_ood --write

Trains the demo model (resnet18 from scratch, 32 px digits), then scores the validation digits
(in-domain) against the same digits shifted (night / washed / lowres / rotate) and against crops
of scikit-learn's sample photographs. Also reports accuracy and calibration on validation.
"""

import argparse
import tempfile
from pathlib import Path

from bench.harness.torch_bench import mlcore_benchmark_run, mlcore_markdown
from mlcore.data import split_records
from mlcore.demo import render_digits
from mlcore.evaluate import ood_auroc_table
from mlcore.images import load_rgb
from mlcore.ood import SCORES
from mlcore.predict import Predictor
from mlcore.shifts import far_ood_images
from mlcore.train import TrainConfig, train


def render(config: TrainConfig, metrics: dict, table: dict, n_valid: int, n_far: int) -> str:
    """Markdown for docs/benchmarks.md."""
    lines = []
    for name, row in table.items():
        aurocs = " | ".join(f"{row[score]:.3f}" for score in SCORES)
        flagged = " | ".join(f"{row[f'flagged_{s}']:.0%}" for s in ("knn", "energy", "msp"))
        lines.append(f"| {name} | {aurocs} | {flagged} |")
    return mlcore_markdown(
        about=[
            f"Model: {config.arch} from scratch, {config.epochs} epochs, {config.image_size} px, "
            f"seed {config.seed}. In-domain: {n_valid} validation digits; each near shift "
            f"transforms those same digits; far-OOD: {n_far} crops of scikit-learn's two sample "
            "photos.",
            f"Validation accuracy {metrics['valid_accuracy']:.3f}; NLL "
            f"{metrics['valid_nll_before_calibration']:.4f} -> "
            f"{metrics['valid_nll_after_calibration']:.4f} and ECE {metrics['ece_before']:.4f} -> "
            f"{metrics['ece_after']:.4f} after temperature scaling "
            f"(T = {metrics['temperature']:.3f}).",
        ],
        table=[
            "| shift | AUROC msp | AUROC energy | AUROC knn | flagged by knn threshold "
            "| flagged by energy | flagged by msp |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *lines,
        ],
        note="Thresholds accept 95% of in-domain validation images; `knn` (distance to the 10th "
        "nearest training embedding, Sun et al. 2022) is the primary `ood_score`.",
    )


def measure(args: argparse.Namespace) -> str:
    """Train, score every shift; the table as markdown."""
    config = TrainConfig(epochs=args.epochs, image_size=32, device="cpu")
    with tempfile.TemporaryDirectory(prefix="bench-ood-") as tmp:
        records = render_digits(Path(tmp) / "digits", size=32)
        model = train(records, config)
        _, valid_idx = split_records(records, seed=config.seed, valid_pct=config.valid_pct)
        valid = [load_rgb(records[i].path) for i in valid_idx]
    predictor = Predictor.from_trained(model)
    table = ood_auroc_table(predictor, valid, far_ood=far_ood_images(args.far, seed=0))
    metrics = {**model.metrics, "temperature": model.temperature}
    return render(config, metrics, table, len(valid), args.far)


def main() -> None:
    """Train, score every shift and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--far", type=int, default=200, help="number of far-OOD crops")
    heading = "### Out-of-domain detection (AUROC per shift)"
    mlcore_benchmark_run(parser, heading=heading, measure=measure)


if __name__ == "__main__":
    main()
