"""Out-of-domain detection: AUROC per score for each near shift and for far-OOD photos.

Run from the repository root:  .venv/bin/python -m bench.bench_ood --write

Trains the demo model (resnet18 from scratch, 32 px digits), then scores the validation digits
(in-domain) against the same digits shifted (night / washed / lowres / rotate) and against crops
of scikit-learn's sample photographs. Also reports accuracy and calibration on validation.
"""

import argparse
import tempfile
from pathlib import Path

import torch

from bench.harness.docs import command_line, nested_section_write
from bench.harness.machine import machine_summary
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
    lines = [
        f"Command: `{command_line()}`",
        "",
        f"Machine: {machine_summary()}. Model: {config.arch} from scratch, {config.epochs} "
        f"epochs, {config.image_size} px, seed {config.seed}. In-domain: {n_valid} validation "
        f"digits; each near shift transforms those same digits; far-OOD: {n_far} crops of "
        "scikit-learn's two sample photos.",
        "",
        f"Validation accuracy {metrics['valid_accuracy']:.3f}; NLL "
        f"{metrics['valid_nll_before_calibration']:.4f} -> "
        f"{metrics['valid_nll_after_calibration']:.4f} and ECE {metrics['ece_before']:.4f} -> "
        f"{metrics['ece_after']:.4f} after temperature scaling (T = {metrics['temperature']:.3f}).",
        "",
        "| shift | AUROC msp | AUROC energy | AUROC knn | flagged by knn threshold "
        "| flagged by energy | flagged by msp |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in table.items():
        aurocs = " | ".join(f"{row[score]:.3f}" for score in SCORES)
        flagged = " | ".join(f"{row[f'flagged_{s}']:.0%}" for s in ("knn", "energy", "msp"))
        lines.append(f"| {name} | {aurocs} | {flagged} |")
    lines += [
        "",
        "Thresholds accept 95% of in-domain validation images; `knn` (distance to the 10th "
        "nearest training embedding, Sun et al. 2022) is the primary `ood_score`.",
    ]
    return "\n".join(lines)


def main() -> None:
    """Train, score every shift and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--far", type=int, default=200, help="number of far-OOD crops")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(epochs=args.epochs, image_size=32, device="cpu")
    with tempfile.TemporaryDirectory(prefix="bench-ood-") as tmp:
        records = render_digits(Path(tmp) / "digits", size=32)
        model = train(records, config)
        _, valid_idx = split_records(records, seed=config.seed, valid_pct=config.valid_pct)
        valid = [load_rgb(records[i].path) for i in valid_idx]
    predictor = Predictor.from_trained(model)
    table = ood_auroc_table(predictor, valid, far_ood=far_ood_images(args.far, seed=0))
    metrics = {**model.metrics, "temperature": model.temperature}
    text = render(config, metrics, table, len(valid), args.far)
    print(text)
    if args.write:
        nested_section_write("## mlcore", "### Out-of-domain detection (AUROC per shift)", text)


if __name__ == "__main__":
    main()
