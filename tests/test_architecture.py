"""The house's shape, enforced: the web side never loads fastai, imports inside functions only
defer heavy ML modules, no module of reviewapp or mlcore grows past 400 lines.

The import direction and the absence of circles are import-linter contracts (pyproject.toml),
checked by `lint-imports` in `make test`; these tests cover what a contract cannot say.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reviewapp", "mlcore")
MAX_LINES = 400

# Function-level imports that are not about heavy ML modules, each with its reason.
ALLOWED_FUNCTION_IMPORTS = {
    # Django imports the app config before any model can load; AppConfig.ready is the place
    # Django's docs name for imports that need the models.
    ("reviewapp/apps.py", "reviewapp.accounts.services"),
}


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_the_web_side_does_not_import_fastai():
    code = (
        "import os, sys, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
        "from django.urls import get_resolver\n"
        "resolver = get_resolver()\n"
        "resolver.url_patterns\n"
        "import config.wsgi, reviewapp.admin, reviewapp.tasks\n"
        "assert resolver.resolve('/')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastai', 'fastcore')))\n"
        "print('mlcore.train' in sys.modules, 'reviewapp.site.views' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    loaded, flags = result.stdout.strip().splitlines()[-2:]
    assert flags == "False True"  # the URL conf really loaded the views; mlcore.train did not
    assert loaded == "[]", f"the web process imported fastai: {loaded}"


def _comment_above(lines: list[str], index: int) -> str:
    """The import's own line plus the comment block above it and the imports it heads."""
    above = index - 1
    while above >= 0 and (
        lines[above].strip().startswith(("from ", "import ", ")"))
        or lines[above].rstrip().endswith(",")
    ):
        above -= 1  # other imports of the same block, parenthesised names included
    comments = []
    while above >= 0 and lines[above].strip().startswith("#"):
        comments.append(lines[above])
        above -= 1
    return "\n".join([*comments, lines[index]])


def _function_imports(path: Path):
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import | ast.ImportFrom):
                names = [inner.module] if isinstance(inner, ast.ImportFrom) else []
                names += [alias.name for alias in inner.names]
                yield inner.lineno, names, _comment_above(lines, inner.lineno - 1)


def test_imports_inside_functions_only_defer_heavy_ml_modules():
    offenders = []
    for path in _modules():
        relative = path.relative_to(ROOT).as_posix()
        for lineno, names, above in _function_imports(path):
            if any((relative, name) in ALLOWED_FUNCTION_IMPORTS for name in names):
                continue
            if "deferred" not in above.lower():
                offenders.append(f"{relative}:{lineno} imports {names[0]} inside a function")
    assert offenders == [], "\n".join(offenders)


def test_the_function_import_check_sees_an_undeclared_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "# Deferred: not this one\ndef f():\n    import json\n\n\n"
        "def g():\n    # Deferred: heavy\n    import torch\n    from torch import (\n"
        "        nn,\n    )\n    import numpy\n"
    )
    found = list(_function_imports(sample))
    assert [(line, "deferred" in above.lower()) for line, _, above in found] == [
        (3, False),
        (8, True),
        (9, True),
        (12, True),
    ]


def test_no_module_is_over_400_lines():
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert long == [], "split these modules:\n" + "\n".join(long)
