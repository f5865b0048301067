"""Project-wide rules: layering, production settings refuse unsafe defaults."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_only_reviewapp_ml_imports_mlcore():
    importers = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "reviewapp").rglob("*.py")
        if "mlcore" in _imported_modules(path)
    }
    assert importers == {"reviewapp/ml.py"}


def test_mlcore_source_never_imports_django_or_celery():
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_modules(path) & {"django", "celery"})
        for path in (ROOT / "mlcore").rglob("*.py")
        if _imported_modules(path) & {"django", "celery"}
    }
    assert offenders == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HANDOFF_ENV": "production"}, "SECRET_KEY must be set"),
        (
            {"HANDOFF_ENV": "production", "SECRET_KEY": "django-insecure-handoff-development-only"},
            "SECRET_KEY must be set",
        ),
        ({"HANDOFF_ENV": "production", "SECRET_KEY": "x" * 50, "DEBUG": "1"}, "DEBUG=True"),
        ({"HANDOFF_ENV": "staging"}, "HANDOFF_ENV must be"),
    ],
)
def test_production_refuses_unsafe_settings(env, message):
    result = _run("import django; django.setup()", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_are_secure():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = _run(code, HANDOFF_ENV="production", SECRET_KEY="k" * 50, ALLOWED_HOSTS="example.org")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True"]


def test_development_defaults_need_no_server():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "False"]
