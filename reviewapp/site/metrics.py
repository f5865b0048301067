"""Prometheus metrics, read from the database at scrape time (prometheus_client).

The state worth watching (queues, decisions, predictions, training runs, drift alarms) is
written by several processes: gunicorn workers, Celery workers, beat. In-process counters would
each see a slice and need prometheus_client's multiprocess mode; reading the database gives
every scrape the whole, consistent picture. Counters come from append-only rows (decisions,
outcomes, predictions, training runs are never deleted), so they only go up, as Prometheus
expects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder

from reviewapp.models import (
    AlarmStatus,
    DecidedBy,
    Decision,
    DriftAlarm,
    Outcome,
    Prediction,
    ReviewTask,
    TaskStatus,
    TrainingRun,
)

logger = logging.getLogger(__name__)

# Prediction latency buckets, in seconds (CPU inference of one small image: ~5-100 ms).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
AUTO_ACCEPT_WINDOW = timedelta(hours=1)

_registry = None


def _queue_depth():

    family = GaugeMetricFamily(
        "handoff_review_queue_depth",
        "Review tasks waiting (open or claimed), by project and reason.",
        labels=["project", "reason"],
    )
    rows = (
        ReviewTask.objects.filter(status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED])
        .values_list("project__slug", "reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    for slug, reason, n in rows:
        family.add_metric([slug, reason], n)
    return family


def _decisions():

    family = CounterMetricFamily(
        "handoff_decisions",
        "Reviewer decisions recorded (undone ones included), by project and verdict.",
        labels=["project", "verdict"],
    )
    rows = (
        Decision.objects.values_list("item__project__slug", "verdict")
        .annotate(n=Count("id"))
        .order_by()
    )
    for slug, verdict, n in rows:
        family.add_metric([slug, verdict], n)
    return family


def _outcomes() -> Iterator:

    total = CounterMetricFamily(
        "handoff_outcomes",
        "Final outcomes, by project and who decided (human or model auto-accept).",
        labels=["project", "decided_by"],
    )
    for slug, by, n in (
        Outcome.objects.values_list("item__project__slug", "decided_by")
        .annotate(n=Count("id"))
        .order_by()
    ):
        total.add_metric([slug, by], n)
    yield total
    rate = GaugeMetricFamily(
        "handoff_auto_accept_rate",
        "Share of the last hour's outcomes the model decided alone, by project.",
        labels=["project"],
    )
    since = timezone.now() - AUTO_ACCEPT_WINDOW
    for slug, n, auto in (
        Outcome.objects.filter(created_at__gte=since)
        .values_list("item__project__slug")
        .annotate(n=Count("id"), auto=Count("id", filter=Q(decided_by=DecidedBy.MODEL)))
        .order_by()
    ):
        rate.add_metric([slug], auto / n)
    yield rate


def _prediction_latency():

    family = HistogramMetricFamily(
        "handoff_prediction_latency_seconds",
        "Time the model took to predict one item, by project.",
        labels=["project"],
    )
    buckets = {
        f"le_{i}": Count("id", filter=Q(latency_ms__lte=bound * 1000))
        for i, bound in enumerate(LATENCY_BUCKETS)
    }
    rows = (
        Prediction.objects.values("item__project__slug")
        .annotate(n=Count("id"), total_ms=Sum(F("latency_ms")), **buckets)
        .order_by()
    )
    for row in rows:
        cumulative = [(str(b), row[f"le_{i}"]) for i, b in enumerate(LATENCY_BUCKETS)]
        family.add_metric(
            [row["item__project__slug"]],
            [*cumulative, ("+Inf", row["n"])],
            sum_value=(row["total_ms"] or 0.0) / 1000,
        )
    return family


def _training_runs() -> Iterator:

    rows = list(
        TrainingRun.objects.values_list("project__slug", "state").annotate(n=Count("id")).order_by()
    )
    by_state = GaugeMetricFamily(
        "handoff_training_runs",
        "Training runs by project and current state.",
        labels=["project", "state"],
    )
    started: dict[str, int] = {}
    for slug, state, n in rows:
        by_state.add_metric([slug, state], n)
        started[slug] = started.get(slug, 0) + n
    yield by_state
    total = CounterMetricFamily(
        "handoff_training_runs_created",
        "Training runs ever created, by project.",
        labels=["project"],
    )
    for slug, n in started.items():
        total.add_metric([slug], n)
    yield total


def _drift_alarms():

    family = GaugeMetricFamily(
        "handoff_drift_alarms_open",
        "Open drift alarms, by project and statistic (0 or 1 each).",
        labels=["project", "statistic"],
    )
    for slug, statistic in DriftAlarm.objects.filter(status=AlarmStatus.OPEN).values_list(
        "project__slug", "statistic"
    ):
        family.add_metric([slug, statistic], 1)
    return family


class HandoffCollector:
    """Collects the domain metrics from the database on every scrape."""

    def collect(self) -> Iterator:
        """One pass of aggregate queries, one metric family each."""
        yield _queue_depth()
        yield _decisions()
        yield from _outcomes()
        yield _prediction_latency()
        yield from _training_runs()
        yield _drift_alarms()

    def describe(self) -> list:
        """Nothing up front: the collector touches the database only when scraped."""
        return []


def metrics_registry():
    """The registry /metrics exposes: the domain collector plus process and Python metrics."""
    global _registry
    if _registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HandoffCollector())
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        _registry = registry
    return _registry


def metrics_render(*, accept: str = "") -> tuple[bytes, str]:
    """The exposition text (or OpenMetrics, when the scraper asks) and its content type."""

    encoder, content_type = choose_encoder(accept)
    return encoder(metrics_registry()), content_type
