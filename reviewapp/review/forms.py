"""Forms: parse and validate request input (no domain logic)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from reviewapp.models import Verdict

DURATION_MAX_MS = 86_400_000
LABEL_MAX_LENGTH = 100


def decision_input_clean(data) -> dict:
    """A desk decision from POST data: task, verdict, label and duration_ms, or ValidationError.

    A label alone means "this is the label" (a correction, or a blind pick). Plain code rather
    than a Form: the desk posts this on every keystroke, and a Form cost 13% of the request's
    CPU (bench/review_cost.py).
    """
    errors = []
    task = _whole_number(data.get("task", ""))
    if task is None:
        errors.append("task: a task id (a whole number) is required.")
    verdict = data.get("verdict", "").strip()
    if verdict and verdict not in Verdict.values:
        errors.append(f"verdict: {verdict!r} is not one of {', '.join(Verdict.values)}.")
    label = data.get("label", "").strip()
    if len(label) > LABEL_MAX_LENGTH:
        errors.append(f"label: at most {LABEL_MAX_LENGTH} characters.")
    duration_raw = data.get("duration_ms", "").strip()
    duration_ms = _whole_number(duration_raw) if duration_raw else None
    if duration_raw and (duration_ms is None or not 0 <= duration_ms <= DURATION_MAX_MS):
        errors.append(f"duration_ms: a whole number of milliseconds, 0 to {DURATION_MAX_MS}.")
    if not verdict and not label:
        errors.append("Choose a label, confirm, out-of-domain or skip.")
    if errors:
        raise ValidationError(errors)
    return {
        "task_id": task,
        "verdict": verdict or Verdict.CORRECT,
        "label": label,
        "duration_ms": duration_ms,
    }


def _whole_number(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
