"""Edge serving on CPU: the ONNX bundle in onnxruntime (handoff_edge) vs torch's Predictor.

Run from the repository root:  .venv/bin/python -m bench.edge_onnx --write

Both sides take the same decoded digit images and do all they do in production: preprocessing,
the forward pass with embeddings, temperature-scaled softmax and the msp/energy/kNN OOD scores
(``mlcore.predict.Predictor`` in torch; ``handoff_edge.predict.EdgePredictor`` in numpy +
onnxruntime). A resnet18 with random weights (timing does not depend on them) is exported with
the dynamo exporter; one thread per side, as on a small device. Bundle size is the folder's.
"""

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort
import torch

from bench.bench_inference import make_images, make_predictor
from bench.harness import ROOT
from bench.harness.docs import command_line, nested_section_write
from bench.harness.machine import machine_summary
from bench.harness.stats import median
from mlcore import export

sys.path.insert(0, str(ROOT / "edge"))
from handoff_edge.bundle import bundle_load  # noqa: E402
from handoff_edge.predict import EdgePredictor  # noqa: E402


def bundle_write(*, size: int, dest: Path) -> tuple[Path, object]:
    """Export a random-weight Predictor to a bundle at dest (parity checked on 32 digits)."""
    predictor = make_predictor(size)
    data = export.onnx_bytes_export(predictor=predictor)
    report = export.parity_check(
        predictor=predictor,
        session=export.onnx_session_open(data),
        images=make_images(size, 32),
        policy={"confidence_threshold": 0.9},
    )
    assert report.passed, report.failures
    meta = export.bundle_metadata(predictor=predictor, policy={}, parity=report.summary())
    files = {
        export.ONNX_FILE: data,
        export.KNN_BANK_FILE: export._npy_bytes(predictor.knn_bank.numpy()),
        export.BUNDLE_FILE: json.dumps(meta).encode(),
        export.PARITY_FILE: b"{}",
    }
    export._write_directory(dest, files)
    return dest, predictor


def timed(call: Callable[[], object], *, repeat: int) -> float:
    """Median seconds of `repeat` calls after one warm-up."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return median(times)


def run(*, size: int, batch: int, repeat: int) -> str:
    """Time both sides and return the markdown section."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path, predictor = bundle_write(size=size, dest=Path(tmp) / "bundle")
        size_mb = sum(p.stat().st_size for p in path.iterdir()) / 1e6
        edge = EdgePredictor(bundle_load(path), threads=1)
        images = make_images(size, batch)
        single = images[:1]
        rows = [
            ("torch Predictor", lambda xs: predictor.predict(xs, batch_size=batch)),
            ("onnxruntime EdgePredictor", lambda xs: edge.predict(xs, batch_size=batch)),
        ]
        lines = [
            f"| {name} | {timed(lambda f=f: f(single), repeat=repeat * 4) * 1000:.1f} ms | "
            f"{batch / timed(lambda f=f: f(images), repeat=repeat):.0f} images/s |"
            for name, f in rows
        ]
    return "\n".join(
        [
            f"`{command_line()}` — {machine_summary()}; onnxruntime {ort.__version__}.",
            "",
            f"resnet18, {size} px input, 10 classes, 1,500-entry kNN bank; one thread per side.",
            f"Bundle size: **{size_mb:.1f} MB** (model.onnx fp32 weights inline, kNN bank fp16,"
            " JSON).",
            "",
            f"| runtime | single image (median) | batch of {batch} (throughput) |",
            "| --- | --- | --- |",
            *lines,
        ]
    )


def main() -> None:
    """Parse arguments, run, print (and optionally write docs/benchmarks.md)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    body = run(size=args.size, batch=args.batch, repeat=args.repeat)
    print(body)
    if args.write:
        nested_section_write("## Edge (issue 19)", "### ONNX runtime vs torch on CPU", body)


if __name__ == "__main__":
    main()
