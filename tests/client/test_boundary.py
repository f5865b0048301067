"""The client is a package of its own: it speaks HTTP and imports nothing of the server."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "python" / "handoff_client"
ALLOWED_THIRD_PARTY = {"httpx", "PIL", "numpy", "pandas", "tqdm", "rich"}


def _top_level_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def test_the_client_imports_only_the_stdlib_httpx_and_its_extras():
    allowed = set(sys.stdlib_module_names) | ALLOWED_THIRD_PARTY | {"handoff_client"}
    offenders = {
        path.name: sorted(_top_level_imports(path) - allowed)
        for path in sorted(PACKAGE.glob("*.py"))
        if _top_level_imports(path) - allowed
    }
    assert offenders == {}


def test_every_module_of_the_client_is_under_400_lines():
    lengths = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert lengths and max(lengths.values()) < 400, lengths


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").exists()
