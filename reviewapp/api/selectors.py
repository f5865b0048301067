"""Reads for the API: an item's status, the outcomes feed, the labeled-data export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from reviewapp.models import ApiClient, Item, Outcome, Project, TaskStatus


class ItemStatus:
    RECEIVED = "received"
    PREDICTED = "predicted"
    WAITING_FOR_REVIEW = "waiting_for_review"
    DECIDED = "decided"
    CHOICES = [RECEIVED, PREDICTED, WAITING_FOR_REVIEW, DECIDED]


def items_for_client(client: ApiClient) -> QuerySet[Item]:
    """Items in the projects the client is scoped to."""
    return Item.objects.filter(project__in=client.projects.all()).select_related(
        "project", "outcome"
    )


def item_status(item: Item) -> str:
    """Where the item stands: received, predicted, waiting for review, or decided."""
    if hasattr(item, "outcome"):
        return ItemStatus.DECIDED
    if item.tasks.filter(status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]).exists():
        return ItemStatus.WAITING_FOR_REVIEW
    if item.predictions.exists():
        return ItemStatus.PREDICTED
    return ItemStatus.RECEIVED


def outcomes_feed(
    *, client: ApiClient, project: Project | None = None, decided_by: str = "", label: str = ""
) -> QuerySet[Outcome]:
    """Final outcomes visible to the client, oldest first (cursor-paginated by id)."""
    outcomes = Outcome.objects.select_related("item__project").filter(
        item__project__in=[project] if project else client.projects.all()
    )
    if decided_by:
        outcomes = outcomes.filter(decided_by=decided_by)
    if label:
        outcomes = outcomes.filter(label=label)
    return outcomes.order_by("id")


@dataclass(frozen=True)
class ExportRow:
    """One labeled item in an export."""

    item_id: int
    key: str
    sha256: str
    label: str
    decided_by: str
    decided_at: str
    width: int
    height: int
    image_name: str
    path: str


def safe_folder(label: str) -> str:
    """A zip folder name for a label that cannot climb out of the archive."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label).strip(".")
    return cleaned or "_"


def export_rows(*, project: Project) -> Iterator[ExportRow]:
    """The project's labeled items (final outcome with a label), streamed from the database."""
    outcomes = (
        Outcome.objects.filter(item__project=project)
        .exclude(label="")
        .select_related("item")
        .order_by("id")
    )
    for outcome in outcomes.iterator(chunk_size=500):
        item = outcome.item
        filename = f"{item.sha256}.{item.image_format}"
        yield ExportRow(
            item_id=item.pk,
            key=item.key,
            sha256=item.sha256,
            label=outcome.label,
            decided_by=outcome.decided_by,
            decided_at=outcome.created_at.isoformat(),
            width=item.width,
            height=item.height,
            image_name=item.image.name,
            path=f"{safe_folder(outcome.label)}/{filename}",
        )
