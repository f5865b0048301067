"""The demo project: scikit-learn's digits as PNGs, an initial model, users, ~200 items.

Idempotent: each step reuses what already exists, so running the seed twice changes nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from reviewapp import ml
from reviewapp.accounts.services import groups_ensure
from reviewapp.intake import services
from reviewapp.models import Alias, Item, ItemOrigin, Project, RunState, RunTrigger, TrainingRun
from reviewapp.rollout import versions
from reviewapp.training import services as training

logger = logging.getLogger(__name__)

DEMO_SLUG = "digits"
BASE_COUNT = 1000  # digits 0..999 are the base training set
STREAM_COUNT = 200  # digits 1000..1199 arrive as demo items; the rest stay held out
HELD_OUT_START = BASE_COUNT + STREAM_COUNT  # digits 1200..1796: simulate_stream's images


def demo_records() -> list[ml.TrainingRecord]:
    """All 1,797 digits rendered to PNG under var/demo-digits (rendered once)."""
    return ml.render_demo_digits(Path(settings.VAR_DIR) / "demo-digits")


def demo_users(echo: Callable[[str], None]) -> tuple:
    """The demo admin and reviewer; passwords from the environment or generated and shown once."""
    reviewers, admins = groups_ensure()
    user_model = get_user_model()
    made = []
    for username, env_password, group in (
        ("demo-admin", settings.HANDOFF_DEMO_ADMIN_PASSWORD, admins),
        ("demo-reviewer", settings.HANDOFF_DEMO_REVIEWER_PASSWORD, reviewers),
    ):
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            password = env_password or secrets.token_urlsafe(12)
            user.set_password(password)
            user.is_staff = username == "demo-admin"
            user.is_superuser = username == "demo-admin"
            user.save()
            _remember_credentials(username, password, echo, from_env=bool(env_password))
        user.groups.add(group)
        made.append(user)
    return tuple(made)


def _remember_credentials(username: str, password: str, echo, *, from_env: bool) -> None:
    if from_env:
        echo(f"demo user {username}: password from the environment")
        return
    path = Path(settings.VAR_DIR) / "demo-credentials.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{username} {password}\n")
    path.chmod(0o600)
    echo(f"demo user {username}: password {password}  (also saved in {path}, mode 600)")


def demo_project(reviewer) -> Project:
    """The digits project in the shadow stage, with the demo reviewer on it."""
    project, _ = Project.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Handwritten digits",
            "description": "scikit-learn's 8x8 handwritten digits, rendered to PNG.",
            "labels": [str(d) for d in range(10)],
        },
    )
    project.reviewers.add(reviewer)
    return project


def demo_base_items(
    project: Project, records: list[ml.TrainingRecord], count: int = BASE_COUNT
) -> int:
    """Store the base training set as labeled items (no prediction needed)."""
    return _records_ingest(
        project,
        records[:count],
        origin=ItemOrigin.BASE,
        labeled=True,
        enqueue_prediction=False,
    )


def demo_champion(project: Project, admin, echo: Callable[[str], None], epochs: int = 3):
    """Train the initial model through mlcore on the CPU and make it champion (once)."""
    champion = versions.champion_of(project)
    if champion is not None:
        return champion
    run = TrainingRun.objects.filter(project=project, state=RunState.QUEUED).first()
    if run is None:
        run = training.training_run_start(
            project=project,
            trigger=RunTrigger.SEED,
            params={"device": "cpu", "epochs": epochs},
            actor=admin,
        )
    version = training.training_run_execute(run_id=run.pk, echo=echo)
    versions.alias_set(
        project=project,
        alias=Alias.CHAMPION,
        model_version=version,
        actor=admin,
        reason="initial demo model trained on the base set",
    )
    return version


def demo_stream(
    project: Project,
    records: list[ml.TrainingRecord],
    start: int = BASE_COUNT,
    count: int = STREAM_COUNT,
) -> int:
    """Feed the demo items through prediction and routing (enqueued for the worker)."""
    return _records_ingest(
        project, records[start : start + count], origin=ItemOrigin.SIMULATION, source={"demo": True}
    )


def _records_ingest(
    project: Project,
    records: list[ml.TrainingRecord],
    *,
    origin: str,
    labeled: bool = False,
    **options,
) -> int:
    """Store each record once (``labeled``: with its label), one transaction each; count new."""
    added = 0
    for record in records:
        with transaction.atomic():
            _, created = services.item_ingest(
                project=project,
                data=Path(record.path).read_bytes(),
                origin=origin,
                client_key=record.key,
                original_filename=Path(record.path).name,
                base_label=record.label if labeled else "",
                **options,
            )
        added += int(created)
    return added


def seed_demo(
    echo: Callable[[str], None],
    *,
    base_count: int = BASE_COUNT,
    stream_count: int = STREAM_COUNT,
    epochs: int = 3,
) -> Project:
    """Seed everything the demo needs; safe to run again."""
    records = demo_records()
    admin, reviewer = demo_users(echo)
    project = demo_project(reviewer)
    echo(f"base items added: {demo_base_items(project, records, base_count)}")
    version = demo_champion(project, admin, echo, epochs=epochs)
    accuracy = version.metrics.get("valid_accuracy")
    echo(f"champion: v{version.number}, validation accuracy {accuracy}")
    queued = demo_stream(project, records, start=BASE_COUNT, count=stream_count)
    echo(f"demo items queued for prediction: {queued}")
    echo(f"items in project: {Item.objects.filter(project=project).count()}")
    return project
