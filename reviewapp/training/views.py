"""Training pages: the Retrain form, a run's live progress, its results and actions."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from reviewapp import ml
from reviewapp.accounts import access, permissions
from reviewapp.models import Item, ModelVersion, Project, RunState, RunTrigger, TrainingRun
from reviewapp.training import evaluation
from reviewapp.training import services as training
from reviewapp.training.forms import RetrainForm

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
ACTIVE = (RunState.QUEUED, RunState.RUNNING)


def _project(request: HttpRequest, slug: str) -> Project:
    return permissions.project_for(request.user, slug)


def _run(request: HttpRequest, run_id: int) -> TrainingRun:
    return access.project_object_get(user=request.user, model=TrainingRun, pk=run_id)


def _refused(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@require_GET
def training_home(request: HttpRequest, slug: str) -> HttpResponse:
    """The Retrain form and the project's runs."""
    project = _project(request, slug)
    context = {
        "project": project,
        "form": RetrainForm(),
        "runs": project.training_runs.select_related("model_version")[:20],
        "can_train": request.user.has_perm("reviewapp.trigger_training"),
    }
    return render(request, "reviewapp/training_home.html", context)


@require_POST
def training_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Start a run from the Retrain form; a second active run is refused with a message."""
    project = _project(request, slug)
    permissions.require_training(request.user, project)
    form = RetrainForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The training settings were invalid: " + form.errors.as_text())
        return redirect("training", slug=slug)
    try:
        run = training.training_run_request(
            project=project, trigger=RunTrigger.MANUAL, params=form.params(), actor=request.user
        )
    except ValidationError as exc:
        _refused(request, exc)
        return redirect("training", slug=slug)
    return redirect("training-run", run_id=run.pk)


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """A run: live progress while active, results and actions when done."""
    run = _run(request, run_id)
    version = ModelVersion.objects.filter(training_run=run).first()
    detail = run.progress_detail or {}
    context = {
        "run": run,
        "project": run.project,
        "version": version,
        "active": run.state in ACTIVE,
        # The loss chart is drawn from this saved history, live and after the run.
        "history": detail.get("history", []),
        "epochs": detail.get("epochs") or run.params.get("epochs") or 1,
        "sets": run.evaluation.get("sets", {}),
        "top_losses": run.evaluation.get("top_losses", []),
        "can_train": request.user.has_perm("reviewapp.trigger_training"),
        "gate": evaluation.promotion_gate(run=run) if version else None,
    }
    return render(request, "reviewapp/training_run.html", context)


@require_GET
def run_status(request: HttpRequest, run_id: int) -> JsonResponse:
    """The run's progress for polling: state, progress detail, loss history, log tail."""
    run = _run(request, run_id)
    detail = run.progress_detail or {}
    return JsonResponse(
        {
            "state": run.state,
            "state_display": run.get_state_display(),
            "active": run.state in ACTIVE,
            "progress": run.progress,
            "detail": {k: v for k, v in detail.items() if k != "history"},
            "history": detail.get("history", []),
            "log_tail": run.log.splitlines()[-LOG_TAIL_LINES:],
            "error": run.error,
            "cancel_requested": run.cancel_requested,
        }
    )


def _action(
    request: HttpRequest, run_id: int, action, done: str, *, by_actor: bool = True
) -> HttpResponse:
    """Run a service on a run for a trainer; say ``done`` or why not, and show the (new) run."""
    run = _run(request, run_id)
    permissions.require_training(request.user, run.project)
    try:
        result = action(run=run, actor=request.user) if by_actor else action(run=run)
    except ValidationError as exc:
        _refused(request, exc)
        return redirect("training-run", run_id=run.pk)
    messages.success(request, done)
    target = result if isinstance(result, TrainingRun) else run
    return redirect("training-run", run_id=target.pk)


@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Cancel a queued run, or ask a running one to stop."""
    return _action(
        request, run_id, training.training_run_cancel, "Cancel requested.", by_actor=False
    )


@require_POST
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    """A fresh run from the same snapshot."""
    done = "Retry started from the same snapshot."
    return _action(request, run_id, training.training_run_retry, done)


@require_POST
def run_make_challenger(request: HttpRequest, run_id: int) -> HttpResponse:
    """Enter the candidate as challenger."""
    done = "The candidate is now the challenger."
    return _action(request, run_id, evaluation.candidate_make_challenger, done)


@require_POST
def run_promote(request: HttpRequest, run_id: int) -> HttpResponse:
    """Promote the candidate to champion, if the gate passes."""
    done = "The candidate is now the champion."
    return _action(request, run_id, evaluation.candidate_promote, done)


@require_GET
def run_confusion_png(request: HttpRequest, run_id: int) -> HttpResponse:
    """The candidate's confusion matrix on the validation split, as a picture."""
    run = _run(request, run_id)
    matrix = run.evaluation.get("confusion_matrix")
    if not matrix:
        return HttpResponse("This run has no confusion matrix yet.", status=404)
    png = ml.confusion_png(
        matrix=matrix, labels=run.evaluation["labels"], title=f"Run {run.pk}, validation split"
    )
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
def item_relabel(request: HttpRequest, item_id: int) -> HttpResponse:
    """Fix an item's label from the top-loss gallery, then go back to the run."""
    item = get_object_or_404(Item.objects.select_related("project"), pk=item_id)
    permissions.require_relabel(request.user, item.project)
    try:
        label = evaluation.item_label_fix(
            item=item, label=request.POST.get("label", ""), actor=request.user
        )
        messages.success(request, f"Item {item.pk} is now labeled {label}.")
    except ValidationError as exc:
        _refused(request, exc)
    run_id = request.POST.get("run", "")
    if run_id.isdigit():
        return redirect("training-run", run_id=int(run_id))
    return redirect("training", slug=item.project.slug)
