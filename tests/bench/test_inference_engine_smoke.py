"""bench.inference_engine --quick runs, and --device cuda falls back to the CPU without a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a CPU-only machine")
def test_quick_cuda_run_falls_back_to_cpu_and_reports_ratios():
    result = subprocess.run(
        [sys.executable, "-m", "bench.inference_engine", "--quick", "--device", "cuda"]
        + ["--threads", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "no CUDA device here" in result.stdout
    assert "| 8 | mlcore predict (decoded images) |" in result.stdout
    assert "ratio to bare torch" in result.stdout
