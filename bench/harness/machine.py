"""What the numbers came from: the CPU model, the software, and the CPU time processes used."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (machines of the same kind differ: timings depend on it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> str:
    """One line describing the hardware and software the numbers came from."""
    import torch  # only benchmarks that print this line pay for importing it

    return (
        f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"Python {platform.python_version()}"
    )


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process on this machine (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
