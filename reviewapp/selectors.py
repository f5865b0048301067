"""Domain reads for pages and commands."""

from __future__ import annotations

from django.db.models import Count, F

from reviewapp.models import Item, Outcome, Project, ReviewTask, TaskStatus


def queue_counts(*, project: Project) -> dict[str, int]:
    """Open tasks by reason (claimed ones count as waiting too)."""
    rows = (
        ReviewTask.objects.filter(project=project, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED])
        .values("reason")
        .annotate(n=Count("id"))
    )
    return {row["reason"]: row["n"] for row in rows}


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
        "agreements": Outcome.objects.filter(item__project=project, decision__isnull=False)
        .filter(decision__suggested_label=F("label"))
        .count(),
    }


def recent_outcomes(*, project: Project, limit: int = 20):
    """The latest final outcomes of a project, newest first."""
    return (
        Outcome.objects.filter(item__project=project)
        .select_related("item", "decision__reviewer", "model_version")
        .order_by("-created_at")[:limit]
    )
