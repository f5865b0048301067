"""The reviewer's desk: the page, its JSON endpoints, and no-JavaScript form fallbacks.

The page renders the first task; desk.js then prefetches the next one and posts decisions
without waiting for them, so the next image shows at once.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from reviewapp.accounts import permissions
from reviewapp.models import Alert, Project, ReviewTask
from reviewapp.review import alerts, claim, selectors
from reviewapp.review import services as queues
from reviewapp.review.forms import decision_input_clean

RESERVED_KEYS = {"x", "s", "z", "?"}


def label_keys(labels: list[str]) -> list[tuple[str, str]]:
    """Keyboard key per label: the label itself when it is one character, else 1-9, 0, a-w."""
    if all(len(str(label)) == 1 for label in labels) and len(set(labels)) == len(labels):
        if not RESERVED_KEYS & {str(label).lower() for label in labels}:
            return [(label, str(label)) for label in labels]
    pool = [*"1234567890", *[c for c in "abcdefghijklmnopqrstuvwy" if c not in RESERVED_KEYS]]
    return [(label, pool[i] if i < len(pool) else "") for i, label in enumerate(labels)]


def _project(request: HttpRequest, slug: str) -> Project:
    return permissions.project_for(request.user, slug)


def _payload(project: Project, task: ReviewTask | None) -> dict | None:
    if task is None:
        return None
    return selectors.task_payload(task, project=project)


@require_GET
def desk(request: HttpRequest, slug: str) -> HttpResponse:
    """The desk page with the reviewer's current task."""
    project = _project(request, slug)
    task = claim.task_claim_next(project=project, reviewer=request.user)
    payload = _payload(project, task)
    context = {
        "project": project,
        "task": task,
        "payload": payload,
        "blind": payload["blind"] if payload else True,
        "queue": selectors.desk_queue_counts(project=project),
        "stats": selectors.reviewer_stats(project=project, reviewer=request.user),
        "label_keys": label_keys(project.labels),
        "alerts": alerts.alerts_open(project=project),
        "endpoints": {
            "next": reverse("desk-next", args=[slug]),
            "decide": reverse("desk-decide", args=[slug]),
            "undo": reverse("desk-undo", args=[slug]),
            "renew": reverse("desk-renew", args=[slug]),
            "stats": reverse("desk-stats", args=[slug]),
        },
    }
    return render(request, "reviewapp/desk.html", context)


@require_POST
def decide_form(request: HttpRequest, slug: str) -> HttpResponse:
    """No-JavaScript fallback: record a decision, then show the next item."""
    project = _project(request, slug)
    try:
        # The task claimed next is the one the desk page then shows.
        queues.decision_submit_and_claim(
            project=project, reviewer=request.user, **_decision_input(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("desk", slug=slug)


@require_POST
def undo_form(request: HttpRequest, slug: str) -> HttpResponse:
    """No-JavaScript fallback: undo the last decision and show that item again."""
    project = _project(request, slug)
    try:
        queues.decision_undo(project=project, reviewer=request.user)
        messages.info(request, "Your last decision was undone.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("desk", slug=slug)


def _decision_input(request: HttpRequest) -> dict:
    try:
        return decision_input_clean(request.POST)
    except ValidationError as exc:
        raise ValidationError("The decision was incomplete: " + " ".join(exc.messages))


def _held(request: HttpRequest) -> list[int]:
    raw = request.GET.get("held", "") or request.POST.get("held", "")
    return [int(part) for part in raw.split(",") if part.strip().isdigit()][:20]


@require_GET
def next_json(request: HttpRequest, slug: str) -> JsonResponse:
    """Claim the next task beyond those the desk already holds."""
    project = _project(request, slug)
    task = claim.task_claim_next(project=project, reviewer=request.user, holding=_held(request))
    return JsonResponse({"task": _payload(project, task)})


@require_POST
def decide_json(request: HttpRequest, slug: str) -> JsonResponse:
    """Record a decision and claim the next task in the same round trip.

    A refusal is a 409 with the reason. ``held`` lists the tasks the desk already shows or has
    prefetched, so the task returned as ``next`` is a new one.
    """
    project = _project(request, slug)
    try:
        _, next_row = queues.decision_submit_and_claim(
            project=project,
            reviewer=request.user,
            **_decision_input(request),
            holding=_held(request),
        )
    except ValidationError as exc:
        return JsonResponse({"ok": False, "error": " ".join(exc.messages)}, status=409)
    payload = selectors.task_payload_from_row(next_row, project=project)
    return JsonResponse({"ok": True, "next": payload})


@require_POST
def undo_json(request: HttpRequest, slug: str) -> JsonResponse:
    """Undo the reviewer's last decision and return its task to show again."""
    project = _project(request, slug)
    try:
        task = queues.decision_undo(project=project, reviewer=request.user)
    except ValidationError as exc:
        return JsonResponse({"ok": False, "error": " ".join(exc.messages)}, status=409)
    return JsonResponse({"ok": True, "task": _payload(project, task)})


@require_POST
def renew_json(request: HttpRequest, slug: str) -> JsonResponse:
    """Keep the leases of the tasks the open desk holds."""
    project = _project(request, slug)
    renewed = claim.task_lease_renew(
        project=project, reviewer=request.user, task_ids=_held(request)
    )
    return JsonResponse({"renewed": renewed})


@require_GET
def stats_json(request: HttpRequest, slug: str) -> JsonResponse:
    """Queue depth by reason and the reviewer's own pace and agreement."""
    project = _project(request, slug)
    return JsonResponse(
        {
            "queue": selectors.desk_queue_counts(project=project),
            "stats": selectors.reviewer_stats(project=project, reviewer=request.user),
        }
    )


@require_POST
def alert_acknowledge(request: HttpRequest, slug: str, alert_id: int) -> HttpResponse:
    """A reviewer takes an open alert from the desk's banner: its escalation stops."""
    project = _project(request, slug)
    alert = get_object_or_404(Alert, pk=alert_id, project=project)
    if alerts.alert_acknowledge(alert=alert, user=request.user):
        messages.info(request, f"You took the {alert.label} alert on item {alert.item_id}.")
    else:
        messages.info(request, "Someone has already acknowledged that alert.")
    return redirect("desk", slug=slug)
