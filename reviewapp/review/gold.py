"""Gold items: marking them (admin action, a CSV of known labels, promoting an adjudication) and
mixing them blindly into the review queue.

A gold task is a ReviewTask that looks like the task it rides along with (same reason and
priority, the gold item's latest prediction as its suggestion) with ``gold_check`` set. Neither
the desk page nor its JSON carries that flag, so a reviewer cannot tell a gold task apart; its
decision is scored against ``Item.gold_label`` (quality.gold_accuracy) and never becomes the
item's outcome (services._decision_record), so a gold item is never counted twice.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q

from reviewapp.models import (
    Item,
    Outcome,
    Prediction,
    Project,
    ReviewReason,
    ReviewTask,
    TaskStatus,
)

logger = logging.getLogger(__name__)

CSV_MAX_BYTES = 5 * 1024 * 1024
CSV_MAX_ERRORS = 50  # the page lists this many; the rest are counted
_OPEN = [TaskStatus.OPEN, TaskStatus.CLAIMED]
_rng = random.SystemRandom()


class GoldRefused(ValidationError):
    """A gold marking that cannot be made (unknown label, no adjudication, bad file)."""


def gold_item_set(*, item: Item, label: str) -> Item:
    """Make ``item`` a gold item whose known label is ``label``."""
    if label not in item.project.labels:
        raise GoldRefused(f"{label!r} is not a label of {item.project.name}.")
    item.is_gold, item.gold_label = True, label
    item.save(update_fields=["is_gold", "gold_label"])
    return item


def gold_items_clear(*, items: Iterable[Item]) -> int:
    """Stop using these items as gold; their open gold tasks are cancelled. Returns how many."""
    ids = [item.pk for item in items]
    with transaction.atomic():
        ReviewTask.objects.filter(item_id__in=ids, gold_check=True, status__in=_OPEN).update(
            status=TaskStatus.CANCELLED
        )
        return Item.objects.filter(pk__in=ids).update(is_gold=False, gold_label="")


def known_label(item: Item) -> str:
    """The label an item is known to have: its human outcome, else its base-set label."""
    outcome = Outcome.objects.filter(item=item).first()
    if outcome is not None and outcome.decided_by == "human" and not outcome.is_out_of_domain:
        return outcome.label
    return item.base_label


def gold_items_mark(*, items: Iterable[Item]) -> tuple[int, list[Item]]:
    """Mark items gold with their known label; returns (marked, items without a known label)."""
    marked, unknown = 0, []
    with transaction.atomic():
        for item in items:
            label = known_label(item)
            if not label or label not in item.project.labels:
                unknown.append(item)
                continue
            gold_item_set(item=item, label=label)
            marked += 1
    return marked, unknown


@dataclass
class GoldImport:
    """What a CSV import did: items marked, or the rows that were wrong (then nothing is)."""

    marked: int = 0
    errors: list[str] = field(default_factory=list)
    more_errors: int = 0


def _csv_rows(raw: bytes) -> list[dict[str, str]]:
    if len(raw) > CSV_MAX_BYTES:
        raise GoldRefused(f"The file is larger than {CSV_MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GoldRefused("The file is not UTF-8 text; save it as CSV (UTF-8).")
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if header[:2] != ["key", "label"]:
        raise GoldRefused("The first line must be the header key,label.")
    reader.fieldnames = header
    try:
        return [row for row in reader]
    except csv.Error as exc:
        raise GoldRefused(f"The file is not valid CSV: {exc}.")


def gold_labels_import(*, project: Project, raw: bytes) -> GoldImport:
    """Mark gold from a CSV of ``key,label`` rows (item key or client key); all or nothing.

    Every row is checked first; one wrong row (unknown key or label, a key twice) and nothing is
    stored, and the result lists each wrong row by its line number.
    """
    rows = _csv_rows(raw)
    if not rows:
        raise GoldRefused("The file has no rows after its header.")
    keys = {(row.get("key") or "").strip() for row in rows}
    by_key: dict[str, int] = {}
    for pk, key, client_key in (
        Item.objects.filter(project=project)
        .filter(Q(key__in=keys) | Q(client_key__in=keys))
        .values_list("pk", "key", "client_key")
    ):
        by_key[key] = pk
        if client_key:
            by_key.setdefault(client_key, pk)
    result, labels, seen = GoldImport(), {}, set()
    for line, row in enumerate(rows, start=2):
        key, label = (row.get("key") or "").strip(), (row.get("label") or "").strip()
        problem = None
        if not key:
            problem = "the key is empty"
        elif key in seen:
            problem = f"key {key!r} appears twice"
        elif key not in by_key:
            problem = f"no item of {project.name} has the key {key!r}"
        elif label not in project.labels:
            problem = f"{label!r} is not a label of {project.name}"
        seen.add(key)
        if problem is None:
            labels[by_key[key]] = label
        elif len(result.errors) < CSV_MAX_ERRORS:
            result.errors.append(f"line {line}: {problem}")
        else:
            result.more_errors += 1
    if result.errors:
        return result
    with transaction.atomic():
        for item in Item.objects.select_for_update().filter(pk__in=labels):
            item.is_gold, item.gold_label = True, labels[item.pk]
            item.save(update_fields=["is_gold", "gold_label"])
    result.marked = len(labels)
    logger.info("gold.imported project=%s items=%s", project.pk, result.marked)
    return result


def gold_promote_adjudicated(*, item: Item) -> Item:
    """Make an adjudicated item gold, with the adjudicator's label as its known label."""
    outcome = Outcome.objects.select_related("decision__task").filter(item=item).first()
    task = outcome.decision.task if outcome is not None and outcome.decision else None
    if task is None or task.reason != ReviewReason.ADJUDICATION:
        raise GoldRefused("Only an item whose outcome was adjudicated can be promoted to gold.")
    if outcome.is_out_of_domain:
        raise GoldRefused("The adjudicator found this item out of domain: it has no label.")
    return gold_item_set(item=item, label=outcome.label)


def adjudicated_items(*, project: Project, limit: int = 20):
    """Items whose outcome an adjudicator settled, newest first, with whether they are gold."""
    return (
        Outcome.objects.filter(
            item__project=project,
            decision__task__reason=ReviewReason.ADJUDICATION,
            is_out_of_domain=False,
        )
        .select_related("item", "decision__reviewer")
        .order_by("-created_at")[:limit]
    )


def gold_task_mix_maybe(*, task: ReviewTask, rng: random.Random | None = None) -> ReviewTask | None:
    """With the project's gold rate, open a gold task beside a newly opened task.

    The gold task copies the new task's reason, priority and informativeness, so it sits next to
    it in the queue and looks like it; a gold item with a task still open is not picked again.
    """
    project = task.project  # routing has it loaded: no query when the rate is zero
    if task.gold_check or project.gold_rate <= 0:
        return None
    rng = rng or _rng
    if rng.random() >= project.gold_rate:
        return None
    busy = ReviewTask.objects.filter(item_id=OuterRef("pk"), status__in=_OPEN)
    candidates = list(
        Item.objects.filter(project_id=task.project_id, is_gold=True)
        .exclude(gold_label="")
        .exclude(Exists(busy))
        .order_by("pk")
        .values_list("pk", flat=True)[:1000]
    )
    if not candidates:
        return None
    item_id = rng.choice(candidates)
    prediction = Prediction.objects.filter(item_id=item_id).order_by("-created_at").first()
    try:
        with transaction.atomic():
            return ReviewTask.objects.create(
                project_id=task.project_id,
                item_id=item_id,
                prediction=prediction,
                reason=task.reason,
                priority=task.priority,
                informativeness=task.informativeness,  # beside it in the queue either order
                gold_check=True,
            )
    except IntegrityError:
        return None  # the item got an open task meanwhile
