"""The inference engine (issue 17): mlcore's predict path vs a bare torch forward, same run.

Run from the repository root:
    .venv/bin/python -m bench.inference_engine --threads 1 --write        # CPU, the demo network
    .venv/bin/python -m bench.inference_engine --device cuda --write      # GPU (bench/gpu_check.sh)

CPU: the demo network (resnet18 at 64 px, 10 classes, random weights: timing only) at batch 1
and 64. mlcore gets decoded RGB images (what a worker holds after decoding) and does everything
it does in production: resize, one uint8 chunk, normalisation, forward with embeddings, softmax,
msp/energy/kNN scores, drift embeddings, image statistics and result objects; a second mlcore
row starts from PNG bytes (decode included). The bare baseline is `model(x)` on a normalised
tensor already on the device. Ratios are mlcore images/s over bare images/s.

CUDA: resnet18 and resnet50 at 224 px, batch 256, fp32 versus autocast (bf16 where the GPU has
it, else fp16), each as a ratio to bare torch in the same precision on the same GPU; then the
training step's images/s (forward, loss, backward, SGD step; autocast + GradScaler for fp16,
bf16 without a scaler) in fp32 and mixed precision. Without a GPU, `--device cuda` says so and
falls back to the CPU measurement. `--quick` shrinks every size for a smoke run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from bench.bench_inference import BANK_SIZE, make_images, make_predictor, time_interleaved
from bench.harness.docs import nested_section_write
from bench.harness.images import png_encode
from bench.harness.stats import median
from bench.harness.torch_bench import MLCORE_SECTION, bare_forward, mlcore_markdown
from mlcore.images import Preprocessing
from mlcore.nets import build_network
from mlcore.ood import build_knn_bank
from mlcore.precision import DevicePlan
from mlcore.predict import Predictor

CPU_HEADING = "### Inference engine on CPU (issue 17)"
GPU_HEADING = "### Inference engine on GPU (issue 17)"
GPU_ARCHS = ("resnet18", "resnet50")


def images_per_second(times: list[float], n: int) -> float:
    """Images per second from the median of repeated timings of `n` images."""
    return n / median(times)


def cpu_rows(args: argparse.Namespace) -> list[dict]:
    """Bare torch vs mlcore at batch 1 and 64 for the demo network on the CPU."""
    predictor = make_predictor(args.size)
    images = make_images(args.size, args.batch)
    encoded = [png_encode(image) for image in images]
    rows = []
    for n, reps in ((1, args.single_reps), (args.batch, args.batch_reps)):
        x = predictor.preprocessing.batch(images[:n])
        times = time_interleaved(
            {
                "bare torch forward": bare_forward(predictor.model, x),
                "mlcore predict (decoded images)": lambda n=n: predictor.predict(images[:n]),
                "mlcore predict (PNG bytes)": lambda n=n: predictor.predict(encoded[:n]),
            },
            reps,
        )
        bare = images_per_second(times["bare torch forward"], n)
        for path, values in times.items():
            rate = images_per_second(values, n)
            rows.append({"batch": n, "path": path, "rate": rate, "ratio": rate / bare})
    return rows


def cpu_markdown(rows: list[dict], args: argparse.Namespace) -> str:
    """The CPU table for docs/benchmarks.md."""
    table = [
        "| batch | path | images/s | ratio to bare torch |",
        "| ---: | --- | ---: | ---: |",
        *(f"| {r['batch']} | {r['path']} | {r['rate']:.0f} | {r['ratio']:.2f}x |" for r in rows),
    ]
    return mlcore_markdown(
        about=[
            f"Demo network: random-weight resnet18 at {args.size} px, 10 classes, kNN bank of "
            f"1500 embeddings; {args.single_reps} single-image and {args.batch_reps} batch-"
            f"{args.batch} repetitions, interleaved, medians reported."
        ],
        table=table,
        note="Issue 17 asks the end-to-end pipeline for >= 0.7x bare-torch batch-64 throughput; "
        "this row is the mlcore share of it (no database, no broker).",
    )


def cuda_sync() -> None:
    """Wait for the GPU (timings must include the work, not just its launch)."""
    torch.cuda.synchronize()


def gpu_inference_rows(args: argparse.Namespace, arch: str) -> list[dict]:
    """fp32 and autocast: bare torch and mlcore images/s for one architecture at 224 px."""
    images = make_images(args.gpu_size, args.gpu_batch)
    rows = []
    for precision in ("fp32", "auto"):
        torch.manual_seed(0)
        predictor = Predictor(
            build_network(arch, 10),
            labels=[str(i) for i in range(10)],
            preprocessing=Preprocessing(args.gpu_size),
            knn_bank=build_knn_bank(np.random.default_rng(0).normal(size=(BANK_SIZE, 512))),
            device="cuda",
            precision=precision,
        )
        x = predictor.preprocessing.batch(images).to("cuda")
        x = x.contiguous(memory_format=torch.channels_last)
        times = time_interleaved(
            {
                "bare": bare_forward(predictor.model, x, dtype=predictor.plan.dtype),
                "mlcore": lambda p=predictor: (p.predict(images), cuda_sync()),
            },
            args.gpu_reps,
        )
        bare = images_per_second(times["bare"], len(images))
        mlcore = images_per_second(times["mlcore"], len(images))
        rows.append(
            {
                "arch": arch,
                "precision": predictor.plan.precision,
                "bare": bare,
                "mlcore": mlcore,
                "ratio": mlcore / bare,
            }
        )
    return rows


def train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: DevicePlan
) -> Callable[[], None]:
    """One SGD step as mlcore.train runs it on CUDA: channels_last, autocast, GradScaler for
    fp16 only (bf16 has float32's range)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda", enabled=plan.dtype == torch.float16)
    loss_fn = nn.CrossEntropyLoss()

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        with plan.autocast():
            loss = loss_fn(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        cuda_sync()

    return run


def gpu_training_rows(args: argparse.Namespace, arch: str) -> list[dict]:
    """Training images/s in fp32 and with mixed precision (mlcore's precision switch)."""
    steps = {}
    for precision in ("fp32", "auto"):
        plan = DevicePlan.for_device("cuda", precision=precision)
        torch.manual_seed(0)
        model = build_network(arch, 10).to("cuda", memory_format=torch.channels_last).train()
        size, n = args.gpu_size, args.train_batch
        x = torch.randn(n, 3, size, size, device="cuda").contiguous(
            memory_format=torch.channels_last
        )
        y = torch.randint(0, 10, (n,), device="cuda")
        steps[plan.precision] = train_step(model, x, y, plan)
    times = time_interleaved(steps, args.gpu_reps)
    fp32 = images_per_second(times["fp32"], args.train_batch)
    return [
        {
            "arch": arch,
            "precision": name,
            "rate": images_per_second(values, args.train_batch),
            "speedup": images_per_second(values, args.train_batch) / fp32,
        }
        for name, values in times.items()
    ]


def gpu_markdown(inference: list[dict], training: list[dict], args: argparse.Namespace) -> str:
    """The GPU tables for docs/benchmarks.md."""
    return mlcore_markdown(
        about=[
            f"GPU: {torch.cuda.get_device_name()}. Random-weight networks, 10 classes, "
            f"{args.gpu_size} px, inference batch {args.gpu_batch}, training batch "
            f"{args.train_batch}, {args.gpu_reps} interleaved repetitions, medians.",
            "Inference: mlcore starts from decoded RGB images (resize, pinned uint8 chunk, "
            "non-blocking copy, normalisation on the GPU, forward, kNN on the GPU, scores, "
            "statistics); bare torch runs `model(x)` on a normalised channels_last tensor "
            "already on the GPU, in the same precision.",
        ],
        table=[
            "| network | precision | bare torch images/s | mlcore images/s | ratio |",
            "| --- | --- | ---: | ---: | ---: |",
            *(
                f"| {r['arch']} | {r['precision']} | {r['bare']:.0f} | {r['mlcore']:.0f} "
                f"| {r['ratio']:.2f}x |"
                for r in inference
            ),
            "",
            "| network | training precision | images/s | vs fp32 |",
            "| --- | --- | ---: | ---: |",
            *(
                f"| {r['arch']} | {r['precision']} | {r['rate']:.0f} | {r['speedup']:.2f}x |"
                for r in training
            ),
        ],
        note="Training rows time one SGD step (forward, loss, backward, update) on "
        "synthetic tensors already on the GPU, with the precision mlcore.train uses.",
    )


def measure(args: argparse.Namespace) -> tuple[str, str]:
    """(heading, markdown) for the requested device."""
    if args.device == "cuda" and not torch.cuda.is_available():
        print("inference_engine: no CUDA device here; measuring the CPU path instead")
        args.device = "cpu"
    if args.device == "cpu":
        return CPU_HEADING, cpu_markdown(cpu_rows(args), args)
    inference, training = [], []
    for arch in GPU_ARCHS:
        inference += gpu_inference_rows(args, arch)
        training += gpu_training_rows(args, arch)
    return GPU_HEADING, gpu_markdown(inference, training, args)


def parse_args() -> argparse.Namespace:
    """Command-line options; `--quick` shrinks every size (smoke test, CPU fallback check)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--single-reps", type=int, default=60)
    parser.add_argument("--batch-reps", type=int, default=6)
    parser.add_argument("--gpu-size", type=int, default=224)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--gpu-reps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.single_reps, args.batch_reps = 32, 8, 3, 2
        args.gpu_size, args.gpu_batch, args.train_batch, args.gpu_reps = 64, 16, 16, 2
    return args


def main() -> None:
    """Run the benchmark and print (and optionally write) the markdown."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    np.random.seed(0)
    started = time.perf_counter()
    heading, text = measure(args)
    print(text)
    print(f"inference_engine: done in {time.perf_counter() - started:.0f} s")
    if args.write:
        nested_section_write(MLCORE_SECTION, heading, text)


if __name__ == "__main__":
    main()
