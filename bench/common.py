"""Helpers shared by the benchmark scripts: timing statistics and docs/benchmarks.md updates."""

import platform
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


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
    import torch

    return (
        f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"Python {platform.python_version()}"
    )


def command_line() -> str:
    """The command that ran this script, for the docs."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None and spec.name:
        return " ".join([".venv/bin/python -m", spec.name, *sys.argv[1:]])
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def replace_section(text: str, heading: str, body: str) -> str:
    """Replace (or append) the markdown section that starts with `heading` up to the next
    heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    pattern = re.compile(
        rf"^{re.escape(heading)}[ \t]*\n.*?(?=^#{{1,{level}}} |\Z)", re.MULTILINE | re.DOTALL
    )
    block = f"{heading}\n\n{body.strip()}\n\n"
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block if text.strip() else block


def update_benchmarks_doc(parent: str, heading: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Write `body` under `heading`, nested in the `parent` section of docs/benchmarks.md."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    level = len(parent) - len(parent.lstrip("#"))
    parent_re = re.compile(
        rf"^{re.escape(parent)}[ \t]*\n.*?(?=^#{{1,{level}}} |\Z)", re.MULTILINE | re.DOTALL
    )
    match = parent_re.search(text)
    if match is None:
        text = replace_section(text, parent, "")
        match = parent_re.search(text)
    section = replace_section(match.group(0), heading, body)
    text = text[: match.start()] + section + text[match.end() :]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")


def database_recreate(*, admin_url: str, name: str) -> str:
    """Drop and create a PostgreSQL database (a benchmark's own); returns its URL."""
    import urllib.parse

    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def http_wait(*, port: int, path: str = "/accounts/login/", timeout: float = 90) -> None:
    """Wait until something answers HTTP on 127.0.0.1:port (raises after `timeout` s)."""
    import http.client
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")
