"""CPU inference: mlcore's Predictor vs a bare torch forward of the same resnet18 on the same batch.

Run from the repository root:  .venv/bin/python -m bench.bench_inference --write

The Predictor gets decoded RGB images at the model's input size (what a service holds after
decoding an upload) and does everything it does in production: preprocessing, batching, the
forward pass with embeddings, temperature-scaled softmax, msp/energy/kNN OOD scores and the
result objects. The bare baseline is `model(x)` on an already normalised tensor. A third row
times the Predictor from PNG bytes (decode included), for information.
"""

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from bench.harness.images import png_encode
from bench.harness.stats import median, percentile
from bench.harness.torch_bench import mlcore_benchmark_run, mlcore_markdown
from mlcore.demo import digit_image, load_digit_arrays
from mlcore.images import Preprocessing
from mlcore.nets import build_network
from mlcore.ood import build_knn_bank
from mlcore.predict import Predictor

N_CLASSES, BANK_SIZE, EMBEDDING = 10, 1500, 512


def make_predictor(size: int) -> Predictor:
    """A resnet18 Predictor with random weights and a realistic kNN bank (timing only)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    return Predictor(
        build_network("resnet18", N_CLASSES),
        labels=[str(i) for i in range(N_CLASSES)],
        preprocessing=Preprocessing(size),
        temperature=1.3,
        ood_thresholds={"msp": 0.5, "energy": -5.0, "knn": 0.8},
        ood_config={"primary_score": "knn", "knn_k": 10},
        knn_bank=build_knn_bank(rng.normal(size=(BANK_SIZE, EMBEDDING))),
    )


def make_images(size: int, n: int) -> list:
    """`n` real digit images rendered at the model's input size."""
    arrays, _ = load_digit_arrays(n)
    return [digit_image(pixels, size).convert("RGB") for pixels in arrays]


def time_interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Run each function `reps` times, interleaved so load drift hits all of them alike."""
    for fn in fns.values():  # warm-up (oneDNN primitive caches, allocator)
        fn()
        fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def bench_size(size: int, single_reps: int, batch_reps: int) -> list[dict]:
    """Single-image latency and batch-64 throughput rows for one input size."""
    predictor = make_predictor(size)
    model, prep = predictor.model, predictor.preprocessing
    images = make_images(size, 64)
    encoded = [png_encode(image) for image in images]
    x_one, x_batch = prep.batch(images[:1]), prep.batch(images)

    def bare(x: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return model(x)

        return run

    single = time_interleaved(
        {
            "bare torch forward": bare(x_one),
            "mlcore Predictor.predict": lambda: predictor.predict(images[:1]),
            "mlcore from PNG bytes": lambda: predictor.predict(encoded[:1]),
        },
        single_reps,
    )
    batch = time_interleaved(
        {
            "bare torch forward": bare(x_batch),
            "mlcore Predictor.predict": lambda: predictor.predict(images, batch_size=64),
            "mlcore from PNG bytes": lambda: predictor.predict(encoded, batch_size=64),
        },
        batch_reps,
    )
    rows = []
    for name in single:
        rows.append(
            {
                "size": size,
                "path": name,
                "p50_ms": 1000 * median(single[name]),
                "p99_ms": 1000 * percentile(single[name], 99),
                "batch_ms": 1000 * median(batch[name]),
                "throughput": 64 / median(batch[name]),
            }
        )
    base = rows[0]
    for row in rows:
        row["ratio_single"] = row["p50_ms"] / base["p50_ms"]
        row["ratio_batch"] = row["batch_ms"] / base["batch_ms"]
    return rows


def render(rows: list[dict], args: argparse.Namespace) -> str:
    """Markdown for docs/benchmarks.md."""
    lines = [
        f"| {r['size']}px | {r['path']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
        f"| {r['batch_ms']:.1f} | {r['throughput']:.0f} | {r['ratio_single']:.2f}x "
        f"| {r['ratio_batch']:.2f}x |"
        for r in rows
    ]
    return mlcore_markdown(
        about=[
            f"Random-weight resnet18, 10 classes, kNN bank of {BANK_SIZE} embeddings; "
            f"{args.single_reps} single-image and {args.batch_reps} batch repetitions, "
            "interleaved, medians reported."
        ],
        table=[
            "| input | path | single p50 ms | single p99 ms | batch-64 ms | images/s "
            "| ratio single (p50) | ratio batch-64 |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *lines,
        ],
        note="Ratios are against the bare forward at the same size; the target for "
        "`mlcore Predictor.predict` is < 1.2x. The PNG row adds decoding, which the bare "
        "forward does not do.",
    )


def measure(args: argparse.Namespace) -> str:
    """Single-image latency and batch throughput at every input size, as markdown."""
    rows = []
    for size in args.sizes:
        rows += bench_size(size, args.single_reps, args.batch_reps)
    return render(rows, args)


def main() -> None:
    """Run the benchmark and print (and optionally write) the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--single-reps", type=int, default=100)
    parser.add_argument("--batch-reps", type=int, default=8)
    mlcore_benchmark_run(parser, heading="### Inference on CPU", measure=measure)


if __name__ == "__main__":
    main()
