"""Domain reads for pages and commands."""

from __future__ import annotations

import json
from datetime import timedelta

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from reviewapp.models import (
    Decision,
    Item,
    ItemKind,
    Outcome,
    Project,
    ReviewReason,
    ReviewTask,
    TaskStatus,
    Verdict,
)
from reviewapp.rollout.routing import suggestion_visible


def queue_counts(*, project: Project) -> dict[str, int]:
    """Open tasks by reason (claimed ones count as waiting too)."""
    rows = (
        ReviewTask.objects.filter(project=project, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED])
        .values("reason")
        .annotate(n=Count("id"))
    )
    return {row["reason"]: row["n"] for row in rows}


def desk_queue_counts(*, project: Project) -> dict[str, int]:
    """queue_counts() as reviewers see them: in a blind stage, priority tasks count as shadow
    ones, since "priority 3 waiting" would tell the reviewer what the model guessed."""
    counts = queue_counts(project=project)
    if not suggestion_visible(stage=project.stage, kill_switch=project.kill_switch):
        hidden = counts.pop(ReviewReason.PRIORITY, 0)
        if hidden:
            counts[ReviewReason.SHADOW] = counts.get(ReviewReason.SHADOW, 0) + hidden
    return counts


def project_summary(*, project: Project) -> dict[str, int]:
    """Headline counts for a project page."""
    items = Item.objects.filter(project=project).exclude(origin="base")
    return {
        "items": items.count(),
        "predicted": items.filter(predictions__isnull=False).distinct().count(),
        "waiting": ReviewTask.objects.filter(
            project=project, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).count(),
        "decided": Outcome.objects.filter(item__project=project).count(),
    }


def recent_outcomes(*, project: Project, limit: int = 20):
    """The latest final outcomes of a project, newest first."""
    return (
        Outcome.objects.filter(item__project=project)
        .select_related("item", "decision__reviewer", "model_version")
        .order_by("-created_at")[:limit]
    )


def reviewer_stats(*, project: Project, reviewer) -> dict[str, float | int | None]:
    """The reviewer's pace (decisions in the last hour) and agreement today.

    Agreement counts gold items (known label) and double-reviewed items (the other reviewer's
    verdict); it is None when there is nothing to compare yet.
    """
    now = timezone.now()
    mine = Decision.objects.filter(
        item__project=project, reviewer=reviewer, undone_at__isnull=True
    ).exclude(verdict=Verdict.SKIP)
    today = mine.filter(created_at__date=timezone.localdate())
    rows = list(
        today.values_list(
            "item_id", "label", "item__is_gold", "item__gold_label", "item__base_label"
        )
    )
    others: dict[int, str] = {}
    for item_id, label in (
        Decision.objects.filter(item_id__in=[r[0] for r in rows], undone_at__isnull=True)
        .exclude(reviewer=reviewer)
        .exclude(verdict=Verdict.SKIP)
        .order_by("created_at")
        .values_list("item_id", "label")
    ):
        others.setdefault(item_id, label or "<ood>")
    agree = total = 0
    for item_id, label, is_gold, gold_label, base_label in rows:
        known = gold_label or base_label
        reference = known if (is_gold and known) else others.get(item_id)
        if reference is not None:
            total += 1
            agree += int(reference == (label or "<ood>"))
    return {
        "last_hour": mine.filter(created_at__gte=now - timedelta(hours=1)).count(),
        "today": len(rows),
        "agreement_today": (agree / total) if total else None,
        "compared_today": total,
    }


def _blind(project: Project, reason: str) -> bool:
    return not suggestion_visible(
        stage=project.stage, kill_switch=project.kill_switch, reason=reason
    )


def task_payload(task: ReviewTask, *, project: Project) -> dict:
    """What the desk needs to show one task (image URLs, suggestion when visible)."""
    item, prediction = task.item, task.prediction
    show_suggestion = not _blind(project, task.reason)
    suggestion = None
    if show_suggestion and prediction is not None:
        suggestion = (prediction.label, prediction.confidence, prediction.probabilities)
        suggestion += (prediction.is_ood,)
    return _payload(
        task_id=task.pk,
        reason=task.reason,
        detail=task.detail,
        item_id=item.pk,
        width=item.width,
        height=item.height,
        suggestion=suggestion,
        blind=not show_suggestion,
        clip=_clip_payload(
            item_id=item.pk,
            kind=item.kind,
            image_format=item.image_format,
            clip=item.clip,
            frames=prediction.frames if (show_suggestion and prediction is not None) else None,
        ),
    )


def task_payload_from_row(row: tuple | None, *, project: Project) -> dict | None:
    """task_payload() from a row of queue_sql.PAYLOAD's columns (None for None): the desk's
    claim returns this row, so the next task costs no ORM query."""
    if row is None:
        return None
    task_id, reason, item_id, width, height, label, confidence, probabilities, is_ood = row[:9]
    kind, image_format, clip, frames, detail = row[9:]
    show_suggestion = not _blind(project, reason)
    suggestion = None
    if show_suggestion and label is not None:
        suggestion = (label, confidence, _json(probabilities), bool(is_ood))
    return _payload(
        task_id=task_id,
        reason=reason,
        detail=detail or "",
        item_id=item_id,
        width=width,
        height=height,
        suggestion=suggestion,
        blind=not show_suggestion,
        clip=_clip_payload(
            item_id=item_id,
            kind=kind,
            image_format=image_format,
            clip=_json(clip),
            frames=_json(frames) if (show_suggestion and label is not None) else None,
        ),
    )


def _json(value):
    """A JSON column as a raw row gives it: text on SQLite, decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _clip_payload(
    *, item_id: int, kind: str, image_format: str, clip: dict, frames: list[dict] | None
) -> dict | None:
    """A clip's strip: each sampled frame's URL and time, and the model's per-frame label and
    confidence only when suggestions are shown (``frames`` is None in the blind stages)."""
    if kind != ItemKind.CLIP:
        return None
    strip = []
    for index, frame in enumerate(clip.get("frames", [])):
        entry = {"url": reverse("item-frame", args=[item_id, index]), "time": frame["time"]}
        if frames and index < len(frames):
            said = frames[index]
            entry.update(label=said["label"], confidence=said["confidence"])
            entry["is_ood"] = said["is_ood"]
        strip.append(entry)
    return {
        "format": image_format,
        "playable": image_format in ("mp4", "webm"),  # a GIF plays as an <img>
        "duration": clip.get("duration"),
        "frames": strip,
    }


def _payload(
    *,
    task_id: int,
    reason: str,
    detail: str,
    item_id: int,
    width: int,
    height: int,
    suggestion: tuple | None,
    blind: bool,
    clip: dict | None = None,
) -> dict:
    if blind and reason == ReviewReason.PRIORITY:
        # A "Priority alert" caption gives the hidden guess away (issue 18): a blind reviewer
        # sees the task as one more shadow item.
        reason = ReviewReason.SHADOW
    payload = {
        "id": task_id,
        "item_id": item_id,
        "image_url": reverse("item-image", args=[item_id]),
        "model_view_url": reverse("item-model-view", args=[item_id]),
        "width": width,
        "height": height,
        "small": width < 256,
        "reason": reason,
        "reason_display": ReviewReason(reason).label + (f": {detail}" if detail else ""),
        "suggestion": None,
        "blind": blind,
        "clip": clip,
    }
    if suggestion is not None:
        label, confidence, probabilities, is_ood = suggestion
        top = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)[:3]
        payload["suggestion"] = {
            "label": label,
            "confidence": round(confidence, 4),
            "top": [[name, round(p, 4)] for name, p in top],
            "is_ood": is_ood,
        }
    return payload
