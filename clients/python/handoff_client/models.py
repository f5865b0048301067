"""What the API returns, as typed, frozen dataclasses (built from its JSON by ``from_json``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Project:
    """A project the token may use, with its label set and rollout stage."""

    slug: str
    name: str
    description: str
    labels: list[str]
    stage: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Project:
        return cls(
            slug=data["slug"],
            name=data["name"],
            description=data.get("description", ""),
            labels=list(data["labels"]),
            stage=data["stage"],
        )


@dataclass(frozen=True)
class Outcome:
    """An item's final outcome: the label (empty when out of domain) and who decided it."""

    label: str
    is_out_of_domain: bool
    decided_by: str  # "human" or "model"
    decided_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            label=data["label"],
            is_out_of_domain=data["is_out_of_domain"],
            decided_by=data["decided_by"],
            decided_at=_when(data.get("decided_at")),
        )


@dataclass(frozen=True)
class Item:
    """An image's place in Handoff: received, predicted, waiting_for_review or decided."""

    id: int
    project: str
    key: str
    client_key: str
    sha256: str
    width: int
    height: int
    status: str
    status_url: str
    received_at: datetime | None
    outcome: Outcome | None

    @property
    def decided(self) -> bool:
        """True once the item has its final outcome."""
        return self.outcome is not None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Item:
        outcome = data.get("outcome")
        return cls(
            id=data["id"],
            project=data["project"],
            key=data["key"],
            client_key=data.get("client_key") or "",
            sha256=data["sha256"],
            width=data["width"],
            height=data["height"],
            status=data["status"],
            status_url=data["status_url"],
            received_at=_when(data.get("received_at")),
            outcome=Outcome.from_json(outcome) if outcome else None,
        )


@dataclass(frozen=True)
class UploadResult:
    """One uploaded image: its item, and whether this upload created it (False: seen before)."""

    item: Item
    created: bool


@dataclass(frozen=True)
class FeedOutcome:
    """One entry of the outcomes feed."""

    id: int
    item_id: int
    key: str
    project: str
    label: str
    is_out_of_domain: bool
    decided_by: str
    decided_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedOutcome:
        return cls(
            id=data["id"],
            item_id=data["item_id"],
            key=data["key"],
            project=data["project"],
            label=data["label"],
            is_out_of_domain=data["is_out_of_domain"],
            decided_by=data["decided_by"],
            decided_at=_when(data.get("decided_at")),
        )


@dataclass(frozen=True)
class FolderExport:
    """A label/image folder written by ``Client.export_folder``: image counts per label."""

    path: str
    counts: dict[str, int]

    @property
    def images(self) -> int:
        """How many images were written."""
        return sum(self.counts.values())
