"""Reads for the project dashboard: time series and production confusion, aggregated in SQL.

Every series is one GROUP BY over a time bucket (hour or day, picked from the data's span), so
the page costs a handful of queries whatever the number of items. Rates carry a two-sided 95%
Wilson score interval (Wilson 1927, https://doi.org/10.2307/2276774; see ``reviewapp.stats``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from reviewapp.models import (
    Alias,
    AliasAssignment,
    DecidedBy,
    Decision,
    Item,
    ItemOrigin,
    Outcome,
    Prediction,
    Project,
    ReviewReason,
    ReviewTask,
    Verdict,
)
from reviewapp.rollout import stats

INTERVAL_CONFIDENCE = 0.95  # two-sided
DEFAULT_DAYS = 30
HOURLY_UNTIL = timedelta(hours=48)  # spans up to two days are drawn per hour, longer per day
AGREED = Q(label=F("decision__suggested_label"))  # the reviewer took the model's suggestion


@dataclass(frozen=True)
class Window:
    """The period a dashboard draws and the width of its buckets."""

    start: datetime
    end: datetime
    bucket: str  # "hour" or "day"

    @property
    def step(self) -> timedelta:
        """The width of one bucket."""
        return timedelta(hours=1) if self.bucket == "hour" else timedelta(days=1)

    def truncate(self, field: str):
        """The SQL expression that puts a timestamp column into its bucket."""
        trunc = TruncHour if self.bucket == "hour" else TruncDay
        return trunc(field, tzinfo=timezone.get_current_timezone())

    def starts(self) -> list[datetime]:
        """Every bucket start in the window, oldest first."""
        out, at = [], self.start
        while at <= self.end:
            out.append(at)
            at += self.step
        return out


@dataclass(frozen=True)
class RatePoint:
    """k of n in one bucket, with a two-sided Wilson interval (weighted series: effective
    counts, floats)."""

    at: datetime
    n: float
    k: float
    low: float
    high: float

    @property
    def rate(self) -> float | None:
        """Observed rate (None with no observations)."""
        return self.k / self.n if self.n else None

    @classmethod
    def of(cls, at: datetime, k: float, n: float) -> RatePoint:
        """From counts."""
        z = stats.z_one_sided(1 - (1 - INTERVAL_CONFIDENCE) / 2)
        low, high = stats.wilson_interval(k, n, z) if n else (0.0, 1.0)
        return cls(at=at, n=n, k=k, low=low, high=high)


@dataclass(frozen=True)
class CountPoint:
    """A count (and an optional second count) in one bucket."""

    at: datetime
    value: int
    other: int = 0


def _bucket_start(moment: datetime, bucket: str) -> datetime:
    moment = timezone.localtime(moment)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def dashboard_window(
    *, project: Project, now: datetime | None = None, days: int = DEFAULT_DAYS
) -> Window:
    """From the project's first production item (at most ``days`` back) to now."""
    now = now or timezone.now()
    first = (
        Item.objects.filter(project=project)
        .exclude(origin=ItemOrigin.BASE)
        .aggregate(first=Min("created_at"))["first"]
    )
    start = max(first or now, now - timedelta(days=days))
    bucket = "hour" if now - start <= HOURLY_UNTIL else "day"
    return Window(start=_bucket_start(start, bucket), end=_bucket_start(now, bucket), bucket=bucket)


def _by_bucket(queryset: QuerySet, *, window: Window, field: str, **aggregates) -> dict:
    """{bucket start: {aggregate: value}} for rows whose ``field`` falls in the window."""
    rows = (
        queryset.filter(**{f"{field}__gte": window.start})
        .annotate(bucket=window.truncate(field))
        .values("bucket")
        .annotate(**aggregates)
        .order_by("bucket")
    )
    return {_bucket_start(row.pop("bucket"), window.bucket): row for row in rows}


def _rates(counts: dict, window: Window, k: str = "k", n: str = "n") -> list[RatePoint]:
    empty = {k: 0, n: 0}
    return [
        RatePoint.of(at, counts.get(at, empty)[k], counts.get(at, empty)[n])
        for at in window.starts()
    ]


def _rate_series(queryset: QuerySet, *, window: Window, hit: Q) -> list[RatePoint]:
    """Per bucket of ``created_at``: how many rows match ``hit``, of how many."""
    counts = _by_bucket(
        queryset, window=window, field="created_at", n=Count("id"), k=Count("id", filter=hit)
    )
    return _rates(counts, window)


def _outcomes(project: Project) -> QuerySet[Outcome]:
    return Outcome.objects.filter(item__project=project)


def automation_series(*, project: Project, window: Window) -> list[RatePoint]:
    """Share of final outcomes the model decided alone, per bucket."""
    return _rate_series(_outcomes(project), window=window, hit=Q(decided_by=DecidedBy.MODEL))


def _reviewed_with_suggestion(project: Project) -> QuerySet[Outcome]:
    """Human outcomes on in-domain items where the model had said something."""
    return (
        _outcomes(project)
        .filter(decided_by=DecidedBy.HUMAN, is_out_of_domain=False)
        .exclude(decision__suggested_label="")
    )


def agreement_series(*, project: Project, window: Window) -> list[RatePoint]:
    """How often the model's label matched the reviewer's, over all human decisions."""
    return _rate_series(_reviewed_with_suggestion(project), window=window, hit=AGREED)


def _audits(project: Project) -> QuerySet[Outcome]:
    return _reviewed_with_suggestion(project).filter(
        decision__task__reason=ReviewReason.AUDIT, audit_probability__gt=0
    )


# Horvitz-Thompson weights 1/p of audited items (https://doi.org/10.1080/01621459.1952.10483446):
# the weighted hits, the weights and their squares, for a Hajek ratio and Kish's effective size.
_WEIGHT = Value(1.0, output_field=FloatField()) / F("audit_probability")
_WEIGHTED = {
    "hits": Sum(Case(When(AGREED, then=_WEIGHT), default=Value(0.0), output_field=FloatField())),
    "weights": Sum(_WEIGHT, output_field=FloatField()),
    "squares": Sum(_WEIGHT * _WEIGHT, output_field=FloatField()),
}


def _weighted_point(at: datetime, row: dict | None) -> RatePoint:
    """The Hajek estimate sum(y/p) / sum(1/p), drawn as k of n effective items (Kish's n_eff =
    (sum w)^2 / sum w^2), so the Wilson band widens when a few rare audits carry the weight."""
    if not row or not row.get("weights"):
        return RatePoint.of(at, 0, 0)
    rate = row["hits"] / row["weights"]
    effective = row["weights"] ** 2 / row["squares"]
    return RatePoint.of(at, rate * effective, effective)


def audited_accuracy_series(*, project: Project, window: Window) -> list[RatePoint]:
    """Weighted accuracy of the model on audit samples (items it would have decided alone).

    Audit rates change (drift alarms raise them), so each audit weighs 1 / its audit
    probability: an unweighted share would over-represent the periods audited most.
    """
    counts = _by_bucket(_audits(project), window=window, field="created_at", **_WEIGHTED)
    return [_weighted_point(at, counts.get(at)) for at in window.starts()]


def audited_accuracy_total(*, project: Project, window: Window) -> RatePoint:
    """audited_accuracy_series() over the whole window, as one weighted estimate."""
    row = _audits(project).filter(created_at__gte=window.start).aggregate(**_WEIGHTED)
    return _weighted_point(window.end, row)


def queue_depth_series(*, project: Project, window: Window) -> list[CountPoint]:
    """Tasks waiting at the end of each bucket (opened minus closed, cumulated)."""
    tasks = ReviewTask.objects.filter(project=project)
    before = tasks.filter(created_at__lt=window.start).aggregate(
        opened=Count("id"), closed=Count("id", filter=Q(closed_at__lt=window.start))
    )
    opened = _by_bucket(tasks, window=window, field="created_at", n=Count("id"))
    closed = _by_bucket(
        tasks.filter(closed_at__isnull=False), window=window, field="closed_at", n=Count("id")
    )
    depth = before["opened"] - before["closed"]
    out = []
    for at in window.starts():
        depth += opened.get(at, {"n": 0})["n"] - closed.get(at, {"n": 0})["n"]
        out.append(CountPoint(at=at, value=depth))
    return out


def throughput_series(*, project: Project, window: Window) -> list[CountPoint]:
    """Decisions (not skips, not undone) and distinct reviewers per bucket."""
    decisions = Decision.objects.filter(item__project=project, undone_at__isnull=True).exclude(
        verdict=Verdict.SKIP
    )
    counts = _by_bucket(
        decisions,
        window=window,
        field="created_at",
        n=Count("id"),
        reviewers=Count("reviewer", distinct=True),
    )
    empty = {"n": 0, "reviewers": 0}
    return [
        CountPoint(
            at=at, value=counts.get(at, empty)["n"], other=counts.get(at, empty)["reviewers"]
        )
        for at in window.starts()
    ]


def _champion_predictions(project: Project) -> QuerySet[Prediction]:
    """Predictions made by the version that held the champion alias at the time."""
    held = AliasAssignment.objects.filter(
        project=project,
        alias=Alias.CHAMPION,
        model_version=OuterRef("model_version"),
        started_at__lte=OuterRef("created_at"),
    ).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=OuterRef("created_at")))
    return Prediction.objects.filter(item__project=project).filter(Exists(held))


def ood_series(*, project: Project, window: Window) -> dict[str, list[RatePoint]]:
    """Out-of-domain share: flagged by the champion, and judged so by reviewers."""
    human = _outcomes(project).filter(decided_by=DecidedBy.HUMAN)
    return {
        "flagged by the model": _rate_series(
            _champion_predictions(project), window=window, hit=Q(is_ood=True)
        ),
        "judged by reviewers": _rate_series(human, window=window, hit=Q(is_out_of_domain=True)),
    }


@dataclass(frozen=True)
class Confusion:
    """Human label (rows) against the model's suggestion (columns) on production decisions."""

    labels: list[str]
    matrix: list[list[int]]
    pairs: list[tuple[str, str, int]]  # (human, model, count), most frequent first
    total: int

    @property
    def agreed(self) -> int:
        """Items on the diagonal."""
        return sum(self.matrix[i][i] for i in range(len(self.labels)))


def production_confusion(*, project: Project, top: int = 5) -> Confusion:
    """Confusion of the model against reviewers' labels, from human decisions in production."""
    rows = (
        _reviewed_with_suggestion(project)
        .values_list("label", "decision__suggested_label")
        .annotate(n=Count("id"))
        .order_by()
    )
    labels = [str(label) for label in project.labels]
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    pairs = []
    total = 0
    for human, model, n in rows:
        if human not in index or model not in index:
            continue
        matrix[index[human]][index[model]] += n
        total += n
        if human != model:
            pairs.append((human, model, n))
    pairs.sort(key=lambda pair: (-pair[2], pair[0], pair[1]))
    return Confusion(labels=labels, matrix=matrix, pairs=pairs[:top], total=total)


def recent_disagreements(*, project: Project, limit: int = 12) -> list[dict]:
    """Latest human decisions that overruled the model's label."""
    rows = (
        _reviewed_with_suggestion(project)
        .exclude(label=F("decision__suggested_label"))
        .order_by("-created_at", "-pk")
        .values("item_id", "label", "decision__suggested_label", "created_at")[:limit]
    )
    return [
        {
            "item_id": row["item_id"],
            "human": row["label"],
            "model": row["decision__suggested_label"],
            "at": row["created_at"],
        }
        for row in rows
    ]


def recent_out_of_domain(*, project: Project, limit: int = 12) -> list[dict]:
    """Latest items the champion flagged out of domain or a reviewer judged so."""
    flagged = _champion_predictions(project).filter(is_ood=True).values("item_id", "created_at")
    judged = _outcomes(project).filter(is_out_of_domain=True).values("item_id", "created_at")
    seen: dict[int, dict] = {}
    for source, rows in (
        ("model", flagged.order_by("-created_at")[:limit]),
        ("reviewer", judged.order_by("-created_at")[:limit]),
    ):
        for row in rows:
            entry = seen.setdefault(row["item_id"], {"item_id": row["item_id"], "by": []})
            entry["by"].append(source)
            entry["at"] = max(entry.get("at", row["created_at"]), row["created_at"])
    return sorted(seen.values(), key=lambda e: e["at"], reverse=True)[:limit]


def totals(points: Iterable[RatePoint]) -> RatePoint | None:
    """All buckets together (None when empty)."""
    points = list(points)
    if not points:
        return None
    return RatePoint.of(points[-1].at, sum(p.k for p in points), sum(p.n for p in points))
