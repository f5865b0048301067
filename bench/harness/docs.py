"""docs/benchmarks.md: each benchmark rewrites its own section (re-reading the file right
before writing, so runs of different benchmarks do not undo each other) and names the command
that produced it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.harness import ROOT

BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
EMPTY_DOC = "# Benchmarks\n"


def command_line() -> str:
    """The command that ran this script, for the docs."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name.removesuffix(".__main__")  # `python -m bench.replay` runs a package
        return " ".join([".venv/bin/python -m", module, *sys.argv[1:]])
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else EMPTY_DOC


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")


def _section_pattern(heading: str) -> re.Pattern:
    """`heading` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    return re.compile(
        rf"^{re.escape(heading)}[ \t]*\n.*?(?=^#{{1,{level}}} |\Z)", re.MULTILINE | re.DOTALL
    )


def replace_section(text: str, heading: str, body: str) -> str:
    """Replace (or append) the markdown section that starts with `heading`."""
    pattern = _section_pattern(heading)
    block = f"{heading}\n\n{body.strip()}\n\n"
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block if text.strip() else block


def heading_section_write(heading: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Write `body` under `heading` (a top-level section of its own)."""
    _write(path, replace_section(_read(path), heading, body))


def nested_section_write(parent: str, heading: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Write `body` under `heading`, nested in the `parent` section."""
    text = _read(path)
    parent_re = _section_pattern(parent)
    match = parent_re.search(text)
    if match is None:
        text = replace_section(text, parent, "")
        match = parent_re.search(text)
    section = replace_section(match.group(0), heading, body)
    _write(path, text[: match.start()] + section + text[match.end() :])


def marked_section_write(marker: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Write `body` between `<!-- marker:start -->` and `<!-- marker:end -->` (or append it)."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = _read(path)
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block
    _write(path, text)
