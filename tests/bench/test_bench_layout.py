"""bench/ stands on its own: it never imports tests/ (tests/ may import bench.harness)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def test_bench_never_imports_tests():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m == "tests" or m.startswith("tests.")
        )
        for path in (ROOT / "bench").rglob("*.py")
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_scanner_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tests.factories import ProjectFactory\n")
    assert "tests.factories" in _imported_modules(module)
