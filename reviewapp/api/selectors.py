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


EXPORT_FIELDS = (
    "item_id", "item__key", "item__sha256", "label", "decided_by", "created_at",
    "item__width", "item__height", "item__image", "item__image_format",
)  # fmt: skip


def export_rows(*, project: Project, chunk_size: int = 2000) -> Iterator[ExportRow]:
    """The project's labeled items (final outcome with a label), streamed from the database.

    Plain tuples from a server-side cursor (no model instances): the export holds one chunk of
    rows at a time, whatever the project's size.
    """
    outcomes = (
        Outcome.objects.filter(item__project=project)
        .exclude(label="")
        .order_by("id")
        .values_list(*EXPORT_FIELDS)
    )
    for item_id, key, sha256, label, by, at, width, height, image, fmt in outcomes.iterator(
        chunk_size=chunk_size
    ):
        yield ExportRow(
            item_id=item_id,
            key=key,
            sha256=sha256,
            label=label,
            decided_by=by,
            decided_at=at.isoformat(),
            width=width,
            height=height,
            image_name=image or "",
            path=f"{safe_folder(label)}/{sha256}.{fmt}",
        )
