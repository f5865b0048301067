#!/usr/bin/env bash
# The prepared GPU check of issue 17, for a session that has a GPU lent (<= 5 minutes on one GPU):
#   1. the engine's GPU tests (CUDA predictions equal the CPU's; skipped without CUDA),
#   2. bench.inference_engine --device cuda: resnet18/resnet50 at 224 px, fp32 vs autocast, as
#      ratios to bare torch on the same GPU, and training images/s with mixed precision,
#      written to docs/benchmarks.md with --write (pass it, or --quick for a smoke run).
# Without a GPU both steps fall back (tests skip, the benchmark measures the CPU path).
# Usage: bench/gpu_check.sh [--quick] [--write]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -c 'import torch; print("cuda:", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
timeout 150 "$PYTHON" -m pytest -q -p no:cacheprovider tests/mlcore/test_engine.py -k gpu
exec timeout 240 "$PYTHON" -m bench.inference_engine --device cuda --threads 4 "$@"
