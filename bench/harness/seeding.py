"""What the benchmarks put in a database: reviewers, projects with a champion, a labeled base
set, a queue of open tasks, and the tests' tiny model.

Import after ``django.setup()`` (it imports the models).
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model

from bench.harness.database import analyze
from reviewapp import ml
from reviewapp.accounts.services import groups_ensure
from reviewapp.intake import services as intake
from reviewapp.models import Item, ItemOrigin, Project, ReviewReason, ReviewTask
from reviewapp.rollout import versions

PASSWORD = "bench-password-123"  # noqa: S105 - throwaway benchmark users
TINY_MODEL = {"arch": "resnet18", "epochs": 1, "image_size": 32, "device": "cpu"}


def user_create(username: str, group, *, staff: bool = False):
    """A user in `group` with the benchmarks' password (updated when it exists already)."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(PASSWORD)
    user.is_staff = staff
    user.save()
    user.groups.add(group)
    return user


def reviewers_create(names: list[str]) -> list:
    """Users in the reviewers group."""
    reviewers_group, _ = groups_ensure()
    return [user_create(name, reviewers_group) for name in names]


def project_with_champion(*, slug: str, artifact, stage: str, **settings) -> tuple:
    """A project with `artifact` (``path``, ``sha256``, ``metadata``) as champion v1."""
    project = Project.objects.create(
        slug=slug, name=slug, labels=list(artifact.metadata["labels"]), stage=stage, **settings
    )
    version = versions.champion_register(project=project, artifact=artifact, reason="b")
    return project, version


def base_items_ingest(*, project, records) -> None:
    """The labeled base set that retraining starts from, stored as the base origin."""
    for record in records:
        intake.item_ingest(
            project=project,
            data=Path(record.path).read_bytes(),
            origin=ItemOrigin.BASE,
            client_key=record.key,
            base_label=record.label,
            enqueue_prediction=False,
        )


def review_queue_seed(clients: int, items: int, run: str) -> tuple:
    """A project with `items` open shadow tasks and `clients` reviewers (their usernames)."""
    project = Project.objects.create(
        slug=f"load-{run}", name=f"Load {run}", labels=list("0123456789")
    )
    users = reviewers_create([f"bench-{index}" for index in range(clients)])
    project.reviewers.add(*users)
    rows = [
        Item(
            project=project,
            sha256=f"{run}-{n:060d}"[-64:],
            key=f"{run}-{n}",
            image=f"items/bench/{n}.png",
            width=32,
            height=32,
            origin="simulation",
        )
        for n in range(items)
    ]
    created = Item.objects.bulk_create(rows, batch_size=1000)
    ReviewTask.objects.bulk_create(
        [
            ReviewTask(project=project, item=i, reason=ReviewReason.SHADOW, priority=20)
            for i in created
        ],
        batch_size=1000,
    )
    analyze()
    return project, [u.username for u in users]


def tiny_model_train(*, records, dest: Path, dataset_hash: str):
    """The tests' tiny model: resnet18, one epoch at 32 px, on the CPU (seconds)."""
    return ml.train_and_save(
        records=records, params=dict(TINY_MODEL), dest=dest, dataset_hash=dataset_hash
    )


def artifact_spec(saved) -> dict:
    """A saved artifact as JSON-able fields (for a child process to register)."""
    return {"path": str(saved.path), "sha256": saved.sha256, "metadata": saved.metadata}
