"""mlcore never imports Django or Celery, serving needs no fastai, and imports form no circle."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mlcore"
# The training side: the only modules allowed to import fastai when they are imported.
TRAINING_MODULES = {"mlcore.train", "mlcore.callbacks", "mlcore.loaders"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if path.name != "__main__.py"  # running it is the CLI; importing it is not meaningful
}
SERVING_MODULES = sorted(set(MODULES) - TRAINING_MODULES)


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _modules_after(statement: str) -> set[str]:
    output = _run(f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))")
    return {name.split(".")[0] for name in output.split()}


def test_importing_all_of_mlcore_pulls_no_django_or_celery():
    modules = _modules_after("import " + ", ".join(sorted(MODULES)))
    assert "fastai" in modules  # the statement really imported the training stack
    assert not modules & {"django", "celery", "kombu"}


def test_serving_modules_do_not_import_fastai():
    # One fresh interpreter imports the serving modules one by one and names the first module
    # after which fastai is loaded, so a failure points at the culprit.
    code = (
        "import importlib, sys\n"
        f"for name in {SERVING_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'fastai' in sys.modules:\n"
        "        print('fastai-after', name)\n"
        "        break\n"
        "print('torch' in sys.modules)\n"
    )
    output = _run(code)
    culprit = output.split()[1] if output.startswith("fastai-after") else None
    assert culprit is None, f"importing {culprit} (or a module it imports) loaded fastai"
    assert output.split()[-1] == "True"  # the serving modules really loaded torch
    assert {"mlcore.predict", "mlcore.artifacts", "mlcore.data"} <= set(SERVING_MODULES)


def _resolve(node: ast.ImportFrom, module: str) -> str | None:
    if not node.level:
        return node.module
    package = module.split(".")
    if MODULES[module].name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports_of(module: str) -> set[str]:
    """mlcore modules a module imports anywhere: top level, functions, TYPE_CHECKING blocks."""
    targets = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (base := _resolve(node, module)):
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in targets if name in MODULES and name != module}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None; depth-first search with a path stack."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            if cycle := visit(target, path + [node]):
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start, []):
            return cycle
    return None


def test_mlcore_import_graph_has_no_cycle():
    graph = {module: _imports_of(module) for module in MODULES}
    # The parser sees real edges, including ones inside functions (cli defers its imports).
    assert {"mlcore.predict", "mlcore.analysis", "mlcore.loaders"} <= graph["mlcore.train"]
    assert "mlcore.train" in graph["mlcore.cli"]
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle in mlcore: " + " -> ".join(cycle)


def test_find_cycle_reports_the_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
