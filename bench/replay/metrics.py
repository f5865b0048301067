"""The replay's accounting: every streamed item against the truth only the harness knows.

Reads the database after a run (outcomes, open tasks, decisions, alarms, rollout events, champion
history) and turns it into totals, phases and a time series (``report`` turns them into the
table and the plot).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOT_MERGED = "n/a (monitoring not merged)"


@dataclass(frozen=True)
class Row:
    """One streamed item after the run."""

    index: int
    shifted: bool
    truth: str
    status: str  # auto | human | queued | pending
    label: str | None


def item_rows(*, entries: list, item_ids: list[int]) -> list[Row]:
    """Where each streamed item ended: decided by the model, by a human, waiting, or nowhere."""
    from reviewapp.models import Outcome, ReviewTask, TaskStatus

    outcomes = {
        item_id: (by, label)
        for item_id, by, label in Outcome.objects.filter(item_id__in=item_ids).values_list(
            "item_id", "decided_by", "label"
        )
    }
    waiting = set(
        ReviewTask.objects.filter(
            item_id__in=item_ids, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("item_id", flat=True)
    )
    rows = []
    for entry, item_id in zip(entries, item_ids, strict=True):
        by, label = outcomes.get(item_id, (None, None))
        status = (
            ("auto" if by == "model" else "human")
            if by
            else ("queued" if item_id in waiting else "pending")
        )
        rows.append(Row(entry.index, entry.shifted, entry.label, status, label))
    return rows


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summarize(rows: list[Row]) -> dict[str, Any]:
    """Counts and rates over a set of rows."""
    auto = [r for r in rows if r.status == "auto"]
    decided = [r for r in rows if r.status in ("auto", "human")]
    solo_wrong = sum(r.label != r.truth for r in auto)
    final_wrong = sum(r.label != r.truth for r in decided)
    return {
        "items": len(rows),
        "auto": len(auto),
        "human": sum(r.status == "human" for r in rows),
        "queued": sum(r.status == "queued" for r in rows),
        "pending": sum(r.status == "pending" for r in rows),
        "automation_rate": _rate(len(auto), len(rows)),
        "solo_wrong": solo_wrong,
        "solo_error": _rate(solo_wrong, len(auto)),
        "final_wrong": final_wrong,
        "final_error": _rate(final_wrong, len(decided)),
    }


def phases(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """The same numbers before, during and after the shift."""
    shifted = [r.index for r in rows if r.shifted]
    if not shifted:
        return {"all": summarize(rows)}
    start, end = min(shifted), max(shifted)
    return {
        "before": summarize([r for r in rows if r.index < start]),
        "shift": summarize([r for r in rows if start <= r.index <= end]),
        "after": summarize([r for r in rows if r.index > end]),
    }


def series(rows: list[Row], window: int) -> list[dict[str, Any]]:
    """Automation rate and solo-decision error per window of `window` consecutive items."""
    points = []
    for start in range(0, len(rows), window):
        chunk = rows[start : start + window]
        numbers = summarize(chunk)
        points.append(
            {
                "start": start,
                "end": start + len(chunk),
                "automation_rate": numbers["automation_rate"],
                "solo_error": numbers["solo_error"],
                "auto": numbers["auto"],
            }
        )
    return points


def seen_times(*, item_ids: list[int], submit_times: list[float]) -> list[float]:
    """When the system first saw each item: its first prediction (else its submission)."""
    from django.db.models import Min

    from reviewapp.models import Prediction

    first = dict(
        Prediction.objects.filter(item_id__in=item_ids)
        .values("item_id")
        .annotate(at=Min("created_at"))
        .values_list("item_id", "at")
    )
    return [
        first[item_id].timestamp() if item_id in first else submitted
        for item_id, submitted in zip(item_ids, submit_times, strict=True)
    ]


def _seen_after_onset(seen: list[float], onset_index: int, start: float, end: float) -> int:
    """Items from the onset on that the system predicted in (start, end]."""
    return sum(start < t <= end for t in seen[onset_index:])


def _off(result: dict[str, Any]) -> dict[str, Any]:
    off = "off (no drift checks)"
    result.update(alarm=off, onset_to_detection=off, detection_to_demotion=off)
    return result


def detection(
    *,
    project_id: int,
    seen: list[float],
    submit_times: list[float],
    onset_index: int | None,
    drift: bool = True,
) -> dict:
    """Items between the shift's onset and the first alarm raised after it, and between the
    alarm and the automatic demotion that followed; counted as the items from the onset on that
    the system had predicted by then (queue lag does not count as detection delay)."""
    from reviewapp.models import RolloutEvent, RolloutEventKind

    result: dict[str, Any] = {"alarm": NOT_MERGED, "onset_to_detection": NOT_MERGED}
    result.update({"detection_to_demotion": NOT_MERGED, "onset_to_demotion": None})
    if onset_index is None:
        return result
    onset = submit_times[onset_index]
    before = -math.inf
    alarm_time = None
    try:
        from reviewapp.models import DriftAlarm
    except ImportError:
        DriftAlarm = None  # noqa: N806 - the monitoring branch is not merged yet
    if not drift:
        _off(result)
    elif DriftAlarm is not None:
        onset_dt = datetime.fromtimestamp(onset, tz=UTC)
        alarms = DriftAlarm.objects.filter(project_id=project_id)
        result["alarms_before_onset"] = alarms.filter(raised_at__lt=onset_dt).count()
        alarm = alarms.filter(raised_at__gte=onset_dt).order_by("raised_at").first()
        if alarm is None:
            result.update(alarm="none", onset_to_detection="not detected")
        else:
            alarm_time = alarm.raised_at.timestamp()
            result["alarm"] = f"{alarm.statistic}: {alarm.summary}"
            count = _seen_after_onset(seen, onset_index, before, alarm_time)
            result["onset_to_detection"] = count
            result["detection_index"] = onset_index + count
    demotion = (
        RolloutEvent.objects.filter(
            project_id=project_id,
            kind=RolloutEventKind.STAGE,
            created_at__gte=datetime.fromtimestamp(alarm_time or onset, tz=UTC),
            evidence__automatic=True,
        )
        .order_by("created_at")
        .first()
    )
    if demotion is None:
        result["onset_to_demotion"] = "no demotion"
        if alarm_time is not None:
            result["detection_to_demotion"] = "no demotion"
        return result
    when = demotion.created_at.timestamp()
    result["demotion"] = f"{demotion.from_value} -> {demotion.to_value}: {demotion.reason}"
    count = _seen_after_onset(seen, onset_index, before, when)
    result["onset_to_demotion"] = count
    result["demotion_index"] = onset_index + count
    if alarm_time is not None:
        result["detection_to_demotion"] = _seen_after_onset(seen, onset_index, alarm_time, when)
    return result


def stage_history(*, project_id: int, submit_times: list[float]) -> list[str]:
    """Every stage change during the stream, with the stream position it happened at."""
    from reviewapp.models import RolloutEvent, RolloutEventKind

    events = RolloutEvent.objects.filter(
        project_id=project_id,
        kind__in=[RolloutEventKind.STAGE, RolloutEventKind.OVERRIDE],
    ).order_by("created_at", "pk")
    return [
        f"{e.from_value} -> {e.to_value} at item "
        f"{sum(t <= e.created_at.timestamp() for t in submit_times)}"
        f"{' (automatic demotion)' if e.evidence.get('automatic') else ''}"
        for e in events
    ]


def _night_copies(records: list, folder: Path) -> list[str]:
    from PIL import Image

    from mlcore import shifts

    paths = []
    for record in records:
        with Image.open(record.path) as img:
            path = folder / f"{record.key}-night.png"
            shifts.night(img.convert("RGB")).save(path)
            paths.append(str(path))
    return paths


def champions(*, project_id: int, evaluation: list, submit_times: list[float]) -> list[dict]:
    """Each model version that became champion, when, and its accuracy on the held-out digits
    that were never streamed (as they are, and night-shifted)."""
    from reviewapp import ml
    from reviewapp.models import Alias, AliasAssignment

    held = AliasAssignment.objects.filter(project_id=project_id, alias=Alias.CHAMPION)
    truth = [r.label for r in evaluation]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        night = _night_copies(evaluation, Path(tmp))
        for assignment in held.select_related("model_version").order_by("started_at"):
            version = assignment.model_version
            path = version.artifact_path
            clean, _ = ml.predict_paths(artifact_path=path, paths=[r.path for r in evaluation])
            dark, _ = ml.predict_paths(artifact_path=path, paths=night)
            start = assignment.started_at.timestamp()
            out.append(
                {
                    "version": version.number,
                    "from_item": sum(t <= start for t in submit_times),
                    "accuracy_clean": sum(map(str.__eq__, clean, truth)) / len(truth),
                    "accuracy_night": sum(map(str.__eq__, dark, truth)) / len(truth),
                    "eval_items": len(truth),
                }
            )
    return out
