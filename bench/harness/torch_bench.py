"""The frame of the mlcore benchmarks (no Django): --threads and --write, torch's thread count,
and the markdown printed and, with --write, put under the mlcore section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from bench.harness.docs import command_line, nested_section_write
from bench.harness.machine import machine_summary

MLCORE_SECTION = "## mlcore"


def mlcore_benchmark_run(
    parser: argparse.ArgumentParser, *, heading: str, measure: Callable[[argparse.Namespace], str]
) -> None:
    """Parse the arguments, run `measure` (which returns markdown) on `--threads` threads, print
    its markdown and, with `--write`, write it under `heading`."""
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = measure(args)
    print(text)
    if args.write:
        nested_section_write(MLCORE_SECTION, heading, text)


def mlcore_markdown(*, about: list[str], table: list[str], note: str) -> str:
    """The command, `Machine: <this machine>. <about[0]>`, further paragraphs of `about`, the
    table (its lines) and a closing note, as markdown paragraphs."""
    paragraphs = [f"Command: `{command_line()}`", f"Machine: {machine_summary()}. {about[0]}"]
    return "\n\n".join([*paragraphs, *about[1:], "\n".join(table), note])


def bare_forward(
    model: torch.nn.Module, x: torch.Tensor, *, dtype: torch.dtype | None = None
) -> Callable[[], object]:
    """The bare-torch baseline: `model(x)` under inference_mode (and autocast to `dtype`) on
    an input already normalised and on the model's device; waits for the GPU to finish."""
    device = x.device

    def run() -> object:
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            out = model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    return run
