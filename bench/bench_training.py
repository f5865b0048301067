"""Training cost: one epoch through mlcore.train vs plain fastai on the same data and hardware.

Run from the repository root:  .venv/bin/python -m bench.bench_training --write

Both sides train a from-scratch resnet18 on the 1,797 scikit-learn digits rendered at 32 px,
batch 64, fit_one_cycle(1, 2e-3). Plain fastai is `DataBlock(ImageBlock, CategoryBlock)` over
the image folder + `vision_learner(..., pretrained=False)`, once with num_workers=0 (mlcore's CPU
setting) and once with fastai's default worker count. mlcore's time is split into setup, fit
(the epoch, progress and cancellation callbacks included) and the post-fit analysis
(temperature, OOD thresholds, reference statistics over every training image) that plain fastai
does not do. Runs are interleaved; medians are reported.
"""

import argparse
import tempfile
import time
from pathlib import Path

from bench.harness.stats import median
from bench.harness.torch_bench import mlcore_benchmark_run, mlcore_markdown
from mlcore.demo import render_digits
from mlcore.train import TrainConfig, train

SIZE, BATCH, LR = 32, 64, 2e-3


def plain_fastai(folder: Path, num_workers: int | None, seed: int) -> dict[str, float]:
    """Setup and fit seconds for the textbook fastai version of the same run."""
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401 (patches Learner)
    from fastai.data.block import CategoryBlock, DataBlock
    from fastai.data.transforms import RandomSplitter, get_image_files, parent_label
    from fastai.metrics import accuracy
    from fastai.torch_core import set_seed
    from fastai.vision.augment import Resize
    from fastai.vision.data import ImageBlock
    from fastai.vision.learner import vision_learner
    from torchvision.models import resnet18

    start = time.perf_counter()
    set_seed(seed)
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_items=get_image_files,
        get_y=parent_label,
        splitter=RandomSplitter(valid_pct=0.2, seed=seed),
        item_tfms=Resize(SIZE, method="squish"),
    )
    kwargs = {} if num_workers is None else {"num_workers": num_workers}
    dls = block.dataloaders(folder, bs=BATCH, device="cpu", **kwargs)
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    fit_start = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, LR)
    end = time.perf_counter()
    return {"setup": fit_start - start, "fit": end - fit_start, "total": end - start}


def mlcore_run(records: list, seed: int) -> dict[str, float]:
    """Setup, fit and analysis seconds of mlcore.train for the same run."""
    events = []
    start = time.perf_counter()
    model = train(
        records,
        TrainConfig(epochs=1, image_size=SIZE, batch_size=BATCH, lr=LR, seed=seed, device="cpu"),
        on_progress=events.append,
    )
    total = time.perf_counter() - start
    fit, analysis = model.metrics["fit_seconds"], model.metrics["analysis_seconds"]
    return {
        "setup": total - fit - analysis,
        "fit": fit,
        "analysis": analysis,
        "total": total,
        "accuracy": model.metrics["valid_accuracy"],
    }


def render(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """Markdown for docs/benchmarks.md."""
    fit = {name: median([r["fit"] for r in runs]) for name, runs in results.items()}
    lines = []
    for name, runs in results.items():
        setup = median([r["setup"] for r in runs])
        total = median([r["total"] for r in runs])
        analysis = median([r.get("analysis", 0.0) for r in runs])
        lines.append(
            f"| {name} | {setup:.1f} | {fit[name]:.1f} | {analysis:.1f} | {total:.1f} "
            f"| {fit[name] / fit['fastai, num_workers=0']:.2f}x "
            f"| {fit[name] / fit['fastai, default workers']:.2f}x |"
        )
    return mlcore_markdown(
        about=[
            f"resnet18 from scratch, 1,797 digits at {SIZE} px, batch {BATCH}, one epoch of "
            f"fit_one_cycle, {args.reps} interleaved runs, medians."
        ],
        table=[
            "| run | setup s | fit (1 epoch) s | post-fit analysis s | total s "
            "| fit ratio vs fastai nw=0 | fit ratio vs fastai default |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *lines,
        ],
        note="Target: mlcore's fit <= 1.1x plain fastai's. The post-fit analysis is extra work "
        "(one inference pass over train + validation images) that plain fastai does not do.",
    )


def measure(args: argparse.Namespace) -> str:
    """`--reps` interleaved runs of each side; the table as markdown."""
    results = {"mlcore.train": [], "fastai, num_workers=0": [], "fastai, default workers": []}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        folder = Path(tmp) / "digits"
        records = render_digits(folder, size=SIZE)
        for rep in range(args.reps):
            results["mlcore.train"].append(mlcore_run(records, seed=rep))
            results["fastai, num_workers=0"].append(plain_fastai(folder, 0, seed=rep))
            results["fastai, default workers"].append(plain_fastai(folder, None, seed=rep))
    return render(results, args)


def main() -> None:
    """Run the comparison and print (and optionally write) the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    mlcore_benchmark_run(parser, heading="### Training on CPU", measure=measure)


if __name__ == "__main__":
    main()
