"""Clip decode + predict time per clip: PyAV decoding with K-segment sampling, then one forward
of the K sampled frames (mlcore.video + mlcore.predict, the path the prediction worker takes).

Run from the repository root:
    .venv/bin/python -m bench.video_decode --reps 5 --write
"""

from __future__ import annotations

import argparse
import time

import torch
from PIL import Image

from bench.bench_inference import make_images, make_predictor
from bench.harness.docs import command_line, marked_section_write
from bench.harness.machine import machine_summary
from bench.harness.stats import median
from mlcore import video

LIMITS = video.Limits(max_seconds=60, max_pixels=1920 * 1080, max_frames=1800)
SHAPES = [(64, 64), (320, 240), (640, 480)]
FORMATS = ["mp4", "webm", "gif"]


def make_clip(extension: str, size: tuple[int, int], seconds: float, fps: int) -> bytes:
    """Real digit images, scaled to `size`, one after another at `fps` frames per second."""
    digits = make_images(32, 50)
    frames = [
        digits[i % len(digits)].resize(size, Image.Resampling.NEAREST)
        for i in range(int(seconds * fps))
    ]
    return video.clip_encode(frames, extension=extension, fps=fps)


def measure(data: bytes, predictor, sampling: video.Sampling, reps: int) -> dict[str, float]:
    """Median decode, predict and total milliseconds per clip over `reps` runs."""
    decode, predict = [], []
    clip = None
    for _ in range(reps + 1):  # the first run warms caches and is dropped
        start = time.perf_counter()
        clip = video.clip_decode(data, sampling=sampling, limits=LIMITS)
        middle = time.perf_counter()
        video.clip_aggregate(predictor.predict(clip.frames))
        end = time.perf_counter()
        decode.append((middle - start) * 1000)
        predict.append((end - middle) * 1000)
    decode, predict = decode[1:], predict[1:]
    total = [d + p for d, p in zip(decode, predict, strict=True)]
    return {
        "frames": clip.frame_count,
        "sampled": len(clip.frames),
        "decode_ms": median(decode),
        "predict_ms": median(predict),
        "total_ms": median(total),
        "decoded_fps": clip.frame_count / (median(decode) / 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=8, help="K sampled frames per clip")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = make_predictor(64)
    sampling = video.Sampling(scheme="segments", frames=args.frames)
    rows = []
    for width, height in SHAPES:
        for extension in FORMATS:
            data = make_clip(extension, (width, height), args.seconds, args.fps)
            result = measure(data, predictor, sampling, args.reps)
            rows.append(
                f"| {extension} | {width}x{height} | {len(data) / 1024:.0f} KiB | "
                f"{result['frames']} | {result['sampled']} | {result['decode_ms']:.1f} | "
                f"{result['predict_ms']:.1f} | {result['total_ms']:.1f} | "
                f"{result['decoded_fps']:.0f} |"
            )
            print(rows[-1], flush=True)
    body = "\n".join(
        [
            "### Video clips: decode + predict per clip",
            "",
            f"Command: `{command_line()}`",
            "",
            f"Machine: {machine_summary()}; PyAV "
            f"{video.av.__version__}. {args.seconds:g} s clips at {args.fps} fps of real digit "
            f"images, K = {args.frames} frames sampled (TSN segment centres), predicted in one "
            "forward by a random-weight resnet18 at 64 px (timing only); medians of "
            f"{args.reps} runs.",
            "",
            "| format | size | file | frames decoded | sampled | decode ms | predict ms "
            "| clip total ms | frames decoded/s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )
    if args.write:
        marked_section_write("video-decode", body)
    print(body)


if __name__ == "__main__":
    main()
