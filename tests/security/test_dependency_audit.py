"""The dependency audit in the test command: fixable vulnerabilities fail, unaudited pins shout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts/audit_deps.py")
audit_deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit_deps)

CLEAN = {"name": "django", "version": "5.2.19", "vulns": []}
FIXABLE = {
    "name": "pillow",
    "version": "9.0.0",
    "vulns": [{"id": "PYSEC-2022-10", "fix_versions": ["9.0.1"], "aliases": ["CVE-2022-22817"]}],
}
UNFIXED = {"name": "torch", "version": "2.14.1", "vulns": [{"id": "GHSA-x", "fix_versions": []}]}
SKIPPED = {"name": "numpy", "skip_reason": "Dependency not found on PyPI and could not be audited"}


def test_a_vulnerability_with_a_fix_fails_and_names_the_fix():
    code, lines = audit_deps.audit_verdict({"dependencies": [CLEAN, FIXABLE]}, required=False)
    assert code == 1
    assert "pillow==9.0.0: PYSEC-2022-10, CVE-2022-22817 (fixed in: 9.0.1)" in lines


def test_a_vulnerability_without_a_fix_is_listed_but_passes():
    code, lines = audit_deps.audit_verdict({"dependencies": [CLEAN, UNFIXED]}, required=False)
    assert code == 0
    assert any(line.startswith("torch==2.14.1: GHSA-x (fixed in: none yet)") for line in lines)


def test_unaudited_pins_are_never_reported_as_clean():
    code, lines = audit_deps.audit_verdict({"dependencies": [CLEAN, SKIPPED]}, required=False)
    assert code == 0
    assert any("1 of 2 pins were NOT checked" in line for line in lines)
    assert "passed WITHOUT checking 1 pin(s)" in lines[-1]
    code, lines = audit_deps.audit_verdict({"dependencies": [CLEAN, SKIPPED]}, required=True)
    assert code == 2


@pytest.mark.parametrize("required", [False, True])
def test_a_fully_audited_clean_report_passes(required):
    code, lines = audit_deps.audit_verdict({"dependencies": [CLEAN]}, required=required)
    assert (code, lines) == (0, ["audit: 1 pin(s) audited, no known vulnerability with a fix"])


def test_the_test_command_runs_the_audit_and_keeps_its_exit_status():
    script = (ROOT / "scripts/test.sh").read_text()
    assert "python scripts/audit_deps.py || status=$?" in script
    assert "pip-audit==" in (ROOT / "requirements.txt").read_text()
