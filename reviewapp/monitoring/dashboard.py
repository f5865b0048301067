"""The project dashboard: reads the series (dashboard_selectors) and draws them (charts)."""

from __future__ import annotations

import logging
from typing import Any

from reviewapp.models import Project
from reviewapp.monitoring import alert_latency, charts, dashboard_drift
from reviewapp.monitoring import dashboard_selectors as ds
from reviewapp.review import selectors
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout.policy import STAGE_ORDER

logger = logging.getLogger(__name__)


def _stage_steps(project: Project) -> list[dict[str, Any]]:
    current = STAGE_ORDER.index(project.stage)
    return [
        {"stage": stage, "label": stage.label, "done": i < current, "current": i == current}
        for i, stage in enumerate(STAGE_ORDER)
    ]


def _rollout_panel(project: Project) -> dict[str, Any]:
    gate = rollout_selectors.gate_report(project=project)
    return {
        "steps": _stage_steps(project),
        "gate": gate,
        "gate_chart": charts.gate_chart(
            lines=gate.lines,
            title=(
                f"Gate {gate.stage} → {gate.to_stage}" if gate.to_stage else f"{gate.stage} stage"
            )
            + ": blind agreement per class vs 1 − ε (green: certified by Learn then Test)",
        )
        if gate.lines
        else None,
        "demotion": rollout_selectors.last_automatic_demotion(project=project),
        "traffic_percent": round(project.traffic_share * 100, 1),
    }


def _quality_panel(project: Project, window: ds.Window) -> dict[str, Any]:
    automation = ds.automation_series(project=project, window=window)
    agreement = ds.agreement_series(project=project, window=window)
    audited = ds.audited_accuracy_series(project=project, window=window)
    return {
        "automation": ds.totals(automation),
        "agreement": ds.totals(agreement),
        "audited": ds.audited_accuracy_total(project=project, window=window),
        "automation_chart": charts.rate_chart(
            name="automation",
            title="Automation rate (share decided by the model), 95% Wilson band",
            bucket=window.bucket,
            series={"auto-decided": automation},
        ),
        "accuracy_chart": charts.rate_chart(
            name="accuracy",
            title="Model vs reviewers, 95% Wilson bands (audits weighted by 1 / audit rate)",
            bucket=window.bucket,
            series={"weighted audited accuracy": audited, "agreement, all reviews": agreement},
            target=project.gate_target_agreement,
        ),
    }


def _operations_panel(project: Project, window: ds.Window) -> dict[str, Any]:
    depth = ds.queue_depth_series(project=project, window=window)
    throughput = ds.throughput_series(project=project, window=window)
    ood = ds.ood_series(project=project, window=window)
    return {
        "queue_chart": charts.count_chart(
            name="queue",
            title="Queue depth (tasks waiting at the end of each bucket)",
            bucket=window.bucket,
            points=depth,
            label="waiting",
        ),
        "throughput_chart": charts.count_chart(
            name="throughput",
            title="Reviewer throughput",
            bucket=window.bucket,
            points=throughput,
            label="decisions",
            other="reviewers",
        ),
        "ood": {name: ds.totals(points) for name, points in ood.items()},
        "ood_chart": charts.rate_chart(
            name="ood",
            title="Out-of-domain rate, 95% Wilson bands",
            bucket=window.bucket,
            series=ood,
        ),
    }


def _errors_panel(project: Project) -> dict[str, Any]:
    confusion = ds.production_confusion(project=project)
    return {
        "confusion": confusion,
        "confusion_chart": charts.confusion_chart(
            labels=confusion.labels,
            matrix=confusion.matrix,
            title=f"Production confusion ({confusion.total} human decisions)",
        )
        if confusion.total
        else None,
        "disagreements": ds.recent_disagreements(project=project),
        "out_of_domain": ds.recent_out_of_domain(project=project),
    }


def project_dashboard(*, project: Project) -> dict[str, Any]:
    """Everything the project page shows, charts already drawn."""
    window = ds.dashboard_window(project=project)
    return {
        "window": window,
        "queue": selectors.queue_counts(project=project),
        "rollout": _rollout_panel(project),
        "quality": _quality_panel(project, window),
        "operations": _operations_panel(project, window),
        "errors": _errors_panel(project),
        "drift": dashboard_drift.drift_panel(project=project),
        "alerts": alert_latency.alert_latency(project=project),
    }
