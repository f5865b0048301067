"""The reviewer-quality page (issue 20) and its gold-item actions: rollout admins only."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp.accounts import permissions
from reviewapp.models import Item, Project
from reviewapp.monitoring.charts_quality import reviewer_bars
from reviewapp.review import gold, quality_figures

# The page reads the decisions of a window, not every decision ever made (0: all time).
WINDOWS_DAYS = (7, 30, 90, 0)
DEFAULT_WINDOW_DAYS = 90


class GoldCsvForm(forms.Form):
    file = forms.FileField(label="CSV of known labels (header key,label)")


def _admin_project(request: HttpRequest, slug: str) -> Project:
    project = get_object_or_404(Project, slug=slug)
    if not permissions.is_rollout_admin(request.user):
        raise PermissionDenied(
            "Only rollout admins (group 'rollout admins') can see reviewer quality and mark gold."
        )
    return project


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _charts(project: Project, figures: quality_figures.ProjectQuality) -> dict:
    people = figures.reviewers
    bar = project.gold_min_accuracy or None
    return {
        "gold": reviewer_bars(
            name="quality-gold",
            title="Accuracy on gold items",
            bars=[
                (p.username, p.gold_accuracy, f"{_percent(p.gold_accuracy)} (n={p.gold_n})")
                for p in people
            ],
            limits=(0, 1.15),
            bar_line=bar,
        ),
        "kappa": reviewer_bars(
            name="quality-kappa",
            title="Agreement with peers (Cohen's κ)",
            bars=[
                (p.username, p.kappa, "" if p.kappa is None else f"{p.kappa:.2f}") for p in people
            ],
            limits=(min([0.0, *(p.kappa or 0 for p in people)]), 1.15),
        ),
        "speed": reviewer_bars(
            name="quality-speed",
            title="Median seconds per decision",
            bars=[
                (
                    p.username,
                    p.median_seconds,
                    "" if p.median_seconds is None else f"{p.median_seconds:.1f} s",
                )
                for p in people
            ],
        ),
    }


@require_GET
def quality_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Per reviewer: accuracy on gold, agreement, speed, undo rate; gold items and actions."""
    project = _admin_project(request, slug)
    days = request.GET.get("days", str(DEFAULT_WINDOW_DAYS))
    days = int(days) if days in {str(d) for d in WINDOWS_DAYS} else DEFAULT_WINDOW_DAYS
    since = timezone.now() - timedelta(days=days) if days else None
    figures = quality_figures.project_quality(project=project, since=since)
    context = {
        "project": project,
        "days": days,
        "windows": [(d, f"last {d} days" if d else "all time") for d in WINDOWS_DAYS],
        "figures": figures,
        "charts": _charts(project, figures),
        "gold_count": Item.objects.filter(project=project, is_gold=True).count(),
        "adjudicated": gold.adjudicated_items(project=project),
        "form": GoldCsvForm(),
    }
    return render(request, "reviewapp/quality.html", context)


@require_http_methods(["GET", "POST"])
def gold_import(request: HttpRequest, slug: str) -> HttpResponse:
    """Mark gold items from a CSV of known labels; a wrong row stores nothing and is listed."""
    project = _admin_project(request, slug)
    form = GoldCsvForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = gold.gold_labels_import(project=project, raw=form.cleaned_data["file"].read())
        except ValidationError as exc:
            form.add_error("file", " ".join(exc.messages))
        else:
            if not result.errors:
                messages.success(request, f"{result.marked} items are now gold.")
                return redirect("quality", slug=slug)
    status = 400 if request.method == "POST" else 200
    context = {"project": project, "form": form, "result": result}
    return render(request, "reviewapp/gold_import.html", context, status=status)


@require_POST
def gold_promote(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    """Promote an adjudicated item to gold, with the adjudicator's label."""
    project = _admin_project(request, slug)
    item = get_object_or_404(Item, pk=item_id, project=project)
    try:
        gold.gold_promote_adjudicated(item=item)
        messages.success(request, f"Item {item.pk} is now a gold item labeled {item.gold_label}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("quality", slug=slug)
