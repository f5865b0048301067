"""Audit requirements.txt with pip-audit: fail on a known vulnerability that has a fixed version.

Run by scripts/test.sh (so by `make test` and CI). Exit codes:

- 0: every pin was audited and none has a fixable vulnerability (unfixed ones are listed), or
  the vulnerability service could not be asked at all and HANDOFF_AUDIT_REQUIRED is not set:
  then a loud warning names every pin that went unaudited and why;
- 1: some pin has a known vulnerability with a fix: upgrade it;
- 2: HANDOFF_AUDIT_REQUIRED=1 and some pin could not be audited (set it where the service is
  reachable, so that an outage cannot pass silently).

pip-audit asks PyPI's JSON API (`/pypi/<name>/<version>/json`, which carries each release's
advisories) and falls back to OSV (api.osv.dev). A PyPI mirror that lacks the per-version
endpoint makes every pin "not found": that is reported as unaudited, never as clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("pypi", "osv")


def audit_run(*, requirements: Path, service: str) -> dict | None:
    """pip-audit's JSON report for the pinned requirements, or None when it could not run."""
    command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps"]
    command += ["--disable-pip", "-f", "json", "--progress-spinner", "off"]
    command += ["-s", service, "--timeout", "15"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    try:
        return json.loads(result.stdout)
    except ValueError:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        sys.stderr.write(f"audit: pip-audit -s {service} gave no report: {reason[:300]}\n")
        return None


def audit_verdict(report: dict, *, required: bool) -> tuple[int, list[str]]:
    """Exit code and the lines to print for one pip-audit JSON report."""
    lines, fixable, skipped = [], 0, []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            ids = ", ".join([vuln["id"], *vuln.get("aliases", [])])
            lines.append(f"{dep['name']}=={dep['version']}: {ids} (fixed in: {fixes})")
            fixable += bool(vuln.get("fix_versions"))
    audited = len(report.get("dependencies", [])) - len(skipped)
    if skipped:
        lines.append(
            f"!! WARNING: {len(skipped)} of {audited + len(skipped)} pins were NOT checked for "
            "known vulnerabilities (the vulnerability service is unreachable from here):"
        )
        lines += [f"!!   {reason}" for reason in skipped]
    if fixable:
        lines.append(f"audit: FAILED, {fixable} known vulnerabilit(ies) with a fix: upgrade them")
        return 1, lines
    if skipped and required:
        lines.append("audit: FAILED, HANDOFF_AUDIT_REQUIRED=1 and some pins were not audited")
        return 2, lines
    if skipped:
        lines.append(
            f"audit: passed WITHOUT checking {len(skipped)} pin(s); {audited} audited pin(s) "
            "have no known vulnerability with a fix"
        )
        return 0, lines
    lines.append(f"audit: {audited} pin(s) audited, no known vulnerability with a fix")
    return 0, lines


def _best_report(requirements: Path) -> dict | None:
    """The first service's report that audited anything, else the last report obtained."""
    last = None
    for service in SERVICES:
        report = audit_run(requirements=requirements, service=service)
        if report is None:
            continue
        last = report
        if any("skip_reason" not in dep for dep in report.get("dependencies", [])):
            return report
    return last


def main() -> int:
    requirements = ROOT / "requirements.txt"
    required = os.environ.get("HANDOFF_AUDIT_REQUIRED", "") in {"1", "true", "yes"}
    report = _best_report(requirements)
    if report is None:
        names = [line.split("==")[0] for line in requirements.read_text().splitlines()]
        names = [n for n in names if n and not n.startswith("#")]
        unaudited = [{"name": n, "skip_reason": "no service answered"} for n in names]
        report = {"dependencies": unaudited}
    code, lines = audit_verdict(report, required=required)
    loud = code != 0 or any(line.startswith("!!") for line in lines)
    (sys.stderr if loud else sys.stdout).write("\n".join(lines) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
