"""How long the project dashboard takes to render with thousands of items (PostgreSQL).

Seeds a fresh database with one automated project and N items spread over 30 days (champion
predictions, auto-accepts, audits and corrections by 4 reviewers, open tasks, drift checks every
50 items for each statistic and one open alarm), then times GET of the project page through
Django's test client: cold (empty chart cache: SQL + drawing) and warm (SQL only; the charts'
data are unchanged, so their SVGs come from the cache).

    .venv/bin/python bench/dashboard_render.py --items 5000
    .venv/bin/python bench/dashboard_render.py --items 5000 --no-write

Results go to docs/benchmarks.md between the dashboard markers.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.database import analyze, database_arguments, database_prepare, django_setup
from bench.harness.docs import command_line, marked_section_write
from bench.harness.machine import machine_summary

DB_NAME = "handoff_bench_dashboard"


def _item(project, key: str, created_at):
    """An item row without a file: the dashboard never opens the image."""
    from reviewapp.models import Item

    return Item(
        project=project,
        sha256=f"{key:0>64}"[-64:],
        key=key,
        image=f"items/b/{key}.png",
        width=8,
        height=8,
        origin="simulation",
        created_at=created_at,
    )


def _seed_items(project, version, reviewers, n: int, rng: random.Random) -> None:
    """Items, champion predictions, tasks, decisions and outcomes, spread over 30 days."""
    from django.utils import timezone

    from reviewapp.models import Decision, Item, Outcome, Prediction, ReviewTask

    now = timezone.now()
    labels = [str(d) for d in range(10)]
    items = Item.objects.bulk_create(
        [
            _item(project, f"k{i}", now - timedelta(days=30) + timedelta(days=30) * i / n)
            for i in range(n)
        ],
        batch_size=2000,
    )
    predictions, plans = [], []
    for item in items:
        label = rng.choice(labels)
        confident, ood = rng.random() < 0.8, rng.random() < 0.05
        predictions.append(
            Prediction(
                item=item,
                model_version=version,
                label=label,
                confidence=0.99 if confident else 0.6,
                probabilities={label: 0.9},
                ood_score=2.0 if ood else 0.1,
                is_ood=ood,
                latency_ms=rng.uniform(5, 80),
                created_at=item.created_at,
            )
        )
        auto = confident and not ood and rng.random() > 0.1
        reason = (
            "audit" if confident and not ood else ("out_of_domain" if ood else "low_confidence")
        )
        plans.append((item, label, auto, reason, ood))
    Prediction.objects.bulk_create(predictions, batch_size=2000)
    tasks, decided = [], []
    outcomes = []
    for index, (item, label, auto, reason, ood) in enumerate(plans):
        done_at = item.created_at + timedelta(minutes=20)
        if auto:
            outcomes.append(
                Outcome(
                    item=item,
                    label=label,
                    decided_by="model",
                    model_version=version,
                    audit_probability=0.1,
                    created_at=done_at,
                )
            )
            continue
        still_open = index > n - 60
        tasks.append(
            ReviewTask(
                project=project,
                item=item,
                reason=reason,
                priority=30,
                status="open" if still_open else "done",
                created_at=item.created_at,
                closed_at=None if still_open else done_at,
            )
        )
        if not still_open:
            decided.append((item, label, ood, done_at))
    tasks = ReviewTask.objects.bulk_create(tasks, batch_size=2000)
    by_item = {t.item_id: t for t in tasks}
    decisions = []
    for item, label, ood, done_at in decided:
        human = "" if ood else (label if rng.random() < 0.9 else rng.choice(labels))
        decisions.append(
            Decision(
                task=by_item[item.pk],
                item=item,
                reviewer=rng.choice(reviewers),
                verdict="ood" if ood else ("confirm" if human == label else "correct"),
                label=human,
                suggested_label=label,
                suggestion_shown=True,
                duration_ms=1500,
                created_at=done_at,
            )
        )
    decisions = Decision.objects.bulk_create(decisions, batch_size=2000)
    outcomes += [
        Outcome(
            item_id=d.item_id,
            label=d.label,
            is_out_of_domain=d.verdict == "ood",
            decided_by="human",
            decision=d,
            model_version=version,
            created_at=d.created_at,
        )
        for d in decisions
    ]
    Outcome.objects.bulk_create(outcomes, batch_size=2000)


def _seed_drift(project, version, n: int, rng: random.Random) -> int:
    """A drift check every 50 items for each statistic; the last fifth shifts; one alarm."""
    from django.utils import timezone

    from reviewapp.models import DriftAlarm, DriftCheck, DriftStatistic

    now = timezone.now()
    rows = []
    windows = max(1, n // 50)
    for statistic in DriftStatistic:
        for w in range(windows):
            end = now - timedelta(days=30) + timedelta(days=30) * (w + 1) / windows
            shifted = statistic.value == "brightness" and w > windows * 0.8
            p = rng.uniform(1e-6, 1e-4) if shifted else rng.uniform(0.01, 1)
            rows.append(
                DriftCheck(
                    project=project,
                    model_version=version,
                    statistic=statistic.value,
                    window="recent",
                    window_start=end - timedelta(hours=3),
                    window_end=end,
                    n_items=200,
                    value=rng.random(),
                    p_value=p,
                    threshold=0.001,
                    alarming=p < 0.001,
                    created_at=end,
                )
            )
    DriftCheck.objects.bulk_create(rows, batch_size=2000)
    DriftAlarm.objects.create(
        project=project,
        model_version=version,
        statistic="brightness",
        value=0.4,
        p_value=1e-5,
        threshold=0.001,
        onset_at=now - timedelta(days=6),
        summary="Brightness drifted: images are darker than the training reference.",
        example_item_ids=list(project.items.values_list("pk", flat=True)[:8]),
    )
    return len(rows)


def _seed(n: int):
    from bench.harness import seeding  # the models: after django.setup()
    from reviewapp.models import Alias, AliasAssignment, ModelVersion, Project

    rng = random.Random(8)
    project = Project.objects.create(
        slug="dash", name="Dashboard bench", labels=[str(d) for d in range(10)], stage="automated"
    )
    version = ModelVersion.objects.create(
        project=project,
        number=1,
        artifact_path="/none",
        sha256="0" * 64,
        architecture="resnet18",
        labels=project.labels,
        input_size=32,
        resize_method="squish",
    )
    AliasAssignment.objects.create(
        project=project,
        alias=Alias.CHAMPION,
        model_version=version,
        started_at=project.created_at - timedelta(days=60),
    )
    reviewers = seeding.reviewers_create([f"bench-reviewer-{index}" for index in range(4)])
    project.reviewers.add(*reviewers)
    _seed_items(project, version, reviewers, n, rng)
    checks = _seed_drift(project, version, n, rng)
    analyze()
    return project, reviewers[0], checks


def _one_more_item(project) -> None:
    """A new auto-accepted item, as live traffic would add between two page views."""
    from django.utils import timezone

    from reviewapp.models import Item, Outcome, Prediction

    n = Item.objects.filter(project=project).count()
    item = _item(project, f"live{n}", timezone.now())
    item.save()
    version = project.model_versions.get()
    Prediction.objects.create(
        item=item,
        model_version=version,
        label="3",
        confidence=0.99,
        probabilities={"3": 0.99},
        ood_score=0.1,
        latency_ms=9.0,
    )
    Outcome.objects.create(
        item=item,
        label="3",
        decided_by="model",
        model_version=version,
        audit_probability=0.1,
        created_at=timezone.now(),
    )


def _time(client, url: str, repeats: int, mode: str, project) -> tuple[list[float], int]:
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], 0
    for _ in range(repeats):
        if mode == "cold":
            cache.clear()
        elif mode == "live":
            _one_more_item(project)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured)
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    database_arguments(parser)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    django_setup(database_prepare(admin_url=args.admin_url, name=DB_NAME))
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    project, reviewer, checks = _seed(args.items)
    client = Client()
    client.force_login(reviewer)
    url = f"/projects/{project.slug}/"
    labels = {
        "cold": "cold: every chart drawn",
        "warm": "warm: same data, charts from the cache",
        "live": "live: one new item before each view (charts whose data changed are redrawn)",
    }
    rows = [
        (label, *_time(client, url, args.repeats, mode, project)) for mode, label in labels.items()
    ]
    table = "| page view | median ms | min ms | max ms | SQL queries |\n"
    table += "| --- | ---: | ---: | ---: | ---: |\n"
    table += "".join(
        f"| {name} | {sorted(t)[len(t) // 2]:.0f} | {min(t):.0f} | {max(t):.0f} | {q} |\n"
        for name, t, q in rows
    )
    print(table)
    if not args.no_write:
        _write(table, args.items, checks)


def _write(table: str, items: int, checks: int) -> None:
    section = (
        f"## Project dashboard (issue 8)\n\n`{command_line()}` on PostgreSQL; "
        f"{machine_summary()}; measured {time.strftime('%Y-%m-%d')}. One project with {items} "
        f"items over 30 days (daily buckets), 4 reviewers, {checks} drift checks and an open "
        "alarm; GET of the project page through Django's test client (no network). Measured "
        "on 2 CPU cores shared with other jobs running at the same time: an upper bound.\n\n"
        f"{table}"
    )
    marked_section_write("dashboard", section)


if __name__ == "__main__":
    main()
