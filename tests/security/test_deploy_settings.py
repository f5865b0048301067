"""Production settings: `check --deploy` is clean, and unsafe settings refuse to start."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The test session sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; a deployment never does.
_INHERITED_UNSAFE = {"SECRET_KEY", "DEBUG", "HANDOFF_ENV", "ALLOWED_HOSTS", "SECURE_HSTS_PRELOAD"}
_INHERITED_UNSAFE |= {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def _production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_UNSAFE}
    env.update(
        HANDOFF_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="handoff.example.org",
        CSRF_TRUSTED_ORIGINS="https://handoff.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        HANDOFF_VAR_DIR=str(tmp_path),
    )
    env.update(overrides)
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _manage(_production_env(tmp_path), "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-handoff-development-only"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "too-short-but-not-empty"}, "SECRET_KEY must be set"),
        ({"DEBUG": "True"}, "DEBUG=True is refused"),
        ({"DEBUG": "on"}, "DEBUG=True is refused"),
    ],
    ids=["empty-key", "dev-key", "short-key", "debug-true", "debug-on"],
)
def test_production_refuses_to_start_with_unsafe_settings(tmp_path, overrides, message):
    env = _production_env(tmp_path, **overrides)
    for command in (
        [sys.executable, "-c", "import config.wsgi"],  # what gunicorn loads
        [sys.executable, "manage.py", "check"],
    ):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode != 0, command
        assert message in result.stderr, result.stderr[-2000:]


def test_a_missing_secret_key_is_refused_too(tmp_path):
    env = _production_env(tmp_path)
    del env["SECRET_KEY"]
    result = _manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
