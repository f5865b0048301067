"""Drift monitoring writes: run the checks, store the series, open and clear alarms, act.

Per window (the last N champion predictions, and today's) ``mlcore.drift`` tests every statistic
against the champion's reference at a Bonferroni level that holds the family-wise false-alarm
rate over a monitoring horizon (HANDOFF_DRIFT_FALSE_ALARM over HANDOFF_DRIFT_HORIZON_ITEMS items).
A newly opened alarm acts once: the rollout engine demotes an automating project
(``rollout.monitoring_alarm``, logged as a RolloutEvent with the alarm's summary), the audit rate
rises to the project's ``drift_audit_rate`` while any alarm is open, and a retraining run starts
when ``project.drift_retrain`` is set (otherwise one is offered on the dashboard).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from reviewapp import ml
from reviewapp.models import (
    AlarmStatus,
    DriftAlarm,
    DriftCheck,
    DriftWindow,
    ModelVersion,
    Prediction,
    Project,
)
from reviewapp.monitoring import text as monitoring_text
from reviewapp.rollout import services as rollout
from reviewapp.rollout import versions
from reviewapp.training import triggers as retraining

logger = logging.getLogger(__name__)

DAY_MAX_ITEMS = 5000
EXAMPLES = 12


@dataclass
class WindowRows:
    """A window's predictions (oldest first) and the mlcore window built from them."""

    name: str
    rows: list[Prediction]
    data: ml.DriftWindow


def per_test_alpha() -> float:
    """The per-test level: family false-alarm rate / (statistics x windows x looks)."""
    interval = settings.HANDOFF_DRIFT_CHECK_EVERY or settings.HANDOFF_DRIFT_WINDOW
    looks = max(1, settings.HANDOFF_DRIFT_HORIZON_ITEMS // max(1, interval))
    tests = len(ml.DRIFT_STATISTICS) * len(DriftWindow.values)
    return ml.drift_alpha_per_test(settings.HANDOFF_DRIFT_FALSE_ALARM, tests=tests, looks=looks)


def _window_data(rows: list[Prediction]) -> ml.DriftWindow:
    dim = ml.DRIFT_PROJECTION_DIM
    embeddings = np.full((len(rows), dim), np.nan)
    stats: dict[str, list[float]] = {}
    for i, row in enumerate(rows):
        sample = getattr(row, "drift_sample", None)
        if sample is not None and len(sample.embedding) == dim:
            embeddings[i] = sample.embedding
        values = sample.image_stats if sample is not None else {}
        for key in {*stats, *values}:
            stats.setdefault(key, [np.nan] * i).append(float(values.get(key, np.nan)))
    return ml.DriftWindow(
        labels=[row.label for row in rows],
        confidences=np.array([row.confidence for row in rows], dtype=np.float64),
        is_ood=np.array([row.is_ood for row in rows], dtype=bool),
        embeddings=embeddings,
        image_stats={key: np.array(values) for key, values in stats.items()},
    )


def _select_windows(*, version: ModelVersion, now: datetime) -> list[WindowRows]:
    """The recent window, plus today's when it holds more than the recent one."""
    recent_n = settings.HANDOFF_DRIFT_WINDOW
    ordered = (
        Prediction.objects.filter(model_version=version)
        .select_related("drift_sample")
        .order_by("-created_at", "-pk")
    )
    recent = list(ordered[:recent_n])[::-1]
    windows = [WindowRows(DriftWindow.RECENT, recent, _window_data(recent))]
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if ordered.filter(created_at__gte=day_start).count() > recent_n:
        day = list(ordered.filter(created_at__gte=day_start)[:DAY_MAX_ITEMS])[::-1]
        windows.append(WindowRows(DriftWindow.DAY, day, _window_data(day)))
    return windows


def _already_checked(*, project: Project, version: ModelVersion, newest: Prediction) -> bool:
    """True when the last recent-window check already ended at this prediction."""
    last = (
        DriftCheck.objects.filter(project=project, window=DriftWindow.RECENT)
        .order_by("-created_at", "-pk")
        .first()
    )
    return (
        last is not None
        and last.model_version_id == version.pk
        and last.detail.get("newest_prediction_id") == newest.pk
    )


def _check_rows(*, project, version, window: WindowRows, results, now) -> list[DriftCheck]:
    rows = window.rows
    return [
        DriftCheck(
            project=project,
            model_version=version,
            statistic=result.statistic,
            window=window.name,
            window_start=rows[0].created_at,
            window_end=rows[-1].created_at,
            n_items=result.n,
            value=result.value,
            p_value=result.p_value,
            threshold=result.threshold,
            alarming=result.alarming,
            detail=ml.json_safe({**result.detail, "newest_prediction_id": rows[-1].pk}),
            created_at=now,
        )
        for result in results
    ]


def _alarm_open(*, project, version, window: WindowRows, result, now) -> DriftAlarm | None:
    """Open an alarm for this statistic unless one is open already; None when it was."""
    start = ml.drift_onset_index(result.item_scores)
    onset_row = window.rows[start]
    examples = ml.drift_example_indices(result.item_scores, start=start, limit=EXAMPLES)
    summary = monitoring_text.alarm_summary(
        result=result, window=window.name, onset_at=onset_row.created_at
    )
    try:
        with transaction.atomic():
            return DriftAlarm.objects.create(
                project=project,
                model_version=version,
                statistic=result.statistic,
                value=result.value,
                p_value=result.p_value,
                threshold=result.threshold,
                onset_at=onset_row.created_at,
                raised_at=now,
                summary=summary,
                detail=ml.json_safe({**result.detail, "window": window.name, "n_items": result.n}),
                example_item_ids=[window.rows[i].item_id for i in examples],
            )
    except IntegrityError:
        return None


def _alarms_update(*, project, version, windows, results_by_window, now) -> list[DriftAlarm]:
    """Open alarms for alarming statistics, clear those no window flags any more."""
    best: dict[str, tuple] = {}
    tested: set[str] = set()
    for window, results in zip(windows, results_by_window, strict=True):
        for result in results:
            tested.add(result.statistic)
            if result.alarming and (
                result.statistic not in best or result.p_value < best[result.statistic][1].p_value
            ):
                best[result.statistic] = (window, result)
    opened = []
    for window, result in best.values():
        alarm = _alarm_open(project=project, version=version, window=window, result=result, now=now)
        if alarm is not None:
            opened.append(alarm)
            logger.warning("drift.alarm_opened project=%s %s", project.slug, alarm.summary)
    quiet = tested - set(best)
    cleared = DriftAlarm.objects.filter(
        project=project, status=AlarmStatus.OPEN, statistic__in=quiet
    ).update(status=AlarmStatus.CLEARED, cleared_at=now)
    if cleared:
        logger.info("drift.alarms_cleared project=%s count=%d", project.slug, cleared)
    return opened


def _sampling_flag_sync(*, project: Project) -> bool:
    """Keep ``drift_alarm_open`` (which raises the audit rate) in step with the open alarms."""
    is_open = DriftAlarm.objects.filter(project=project, status=AlarmStatus.OPEN).exists()
    Project.objects.filter(pk=project.pk).exclude(drift_alarm_open=is_open).update(
        drift_alarm_open=is_open
    )
    return is_open


def _act(*, project: Project, opened: list[DriftAlarm]) -> dict:
    """Demote, raise sampling and start or offer retraining for newly opened alarms."""
    project.refresh_from_db()
    from_stage = project.stage
    summary = " ".join(alarm.summary for alarm in opened)
    kind = "drift (" + ", ".join(alarm.statistic for alarm in opened) + ")"
    detail = {
        "alarm_ids": [a.pk for a in opened],
        "statistics": [a.statistic for a in opened],
        "values": {a.statistic: a.value for a in opened},
        "p_values": {a.statistic: a.p_value for a in opened},
    }
    demoted = rollout.monitoring_alarm(project=project, kind=kind, detail=detail, summary=summary)
    actions = {"demoted": demoted, "from_stage": from_stage, "to_stage": project.stage}
    actions["sampling_boost"] = project.drift_audit_rate
    if project.drift_retrain:
        run = retraining.training_on_drift(project=project, reason=summary)
        actions["training_run_id"] = run.pk if run is not None else None
    else:
        actions["retraining"] = "offered"
    DriftAlarm.objects.filter(pk__in=[a.pk for a in opened]).update(actions=actions)
    for alarm in opened:
        alarm.actions = actions
    return actions


def drift_check_run(*, project: Project) -> list[DriftAlarm]:
    """Check the champion's recent and daily windows; returns the alarms this check opened."""
    version = versions.champion_of(project)
    if version is None:
        return []
    now = timezone.now()
    windows = [w for w in _select_windows(version=version, now=now) if w.rows]
    if not windows or _already_checked(
        project=project, version=version, newest=windows[0].rows[-1]
    ):
        return []
    reference = ml.drift_reference(artifact_path=version.artifact_path, sha256=version.sha256)
    alpha = per_test_alpha()
    results_by_window = [
        ml.drift_run_tests(w.data, reference, alpha=alpha, seed=w.rows[-1].pk) for w in windows
    ]
    checks = [
        check
        for window, results in zip(windows, results_by_window, strict=True)
        for check in _check_rows(
            project=project, version=version, window=window, results=results, now=now
        )
    ]
    DriftCheck.objects.bulk_create(checks)
    opened = _alarms_update(
        project=project,
        version=version,
        windows=windows,
        results_by_window=results_by_window,
        now=now,
    )
    _sampling_flag_sync(project=project)
    if opened:
        _act(project=project, opened=opened)
    logger.info(
        "drift.checked project=%s checks=%d opened=%d", project.slug, len(checks), len(opened)
    )
    return opened
