"""Rollout admin pages: gates, controls, timeline, champion/challenger. Rollout admins only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_GET, require_POST

from reviewapp.accounts import permissions
from reviewapp.models import Alias, ModelVersion, Project
from reviewapp.rollout import champion as rollout_champion
from reviewapp.rollout import evidence as rollout_evidence
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout import services as rollout
from reviewapp.rollout.forms import (
    ChallengerForm,
    KillSwitchForm,
    PolicyForm,
    PromoteForm,
    ShareForm,
)

logger = logging.getLogger(__name__)


def _admin_project(request: HttpRequest, slug: str) -> Project:
    project = get_object_or_404(Project, slug=slug)
    if not permissions.is_rollout_admin(request.user):
        raise PermissionDenied(
            "Only rollout admins (group 'rollout admins') can see and change a project's rollout."
        )
    return project


def _refused(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))


def _form_errors(request: HttpRequest, form) -> None:
    messages.error(request, "Not changed: " + form.errors.as_text())


def _admin_action(
    request: HttpRequest,
    slug: str,
    form_class: type[forms.Form],
    action: Callable[[Project, forms.Form], str],
    *,
    page: str = "rollout",
    level: Callable[[HttpRequest, str], None] = messages.success,
    quiet_invalid: bool = False,
) -> HttpResponse:
    """Run a form-backed rollout action for an admin, report how it went, go back to the page.

    An invalid form changes nothing (its errors are shown unless ``quiet_invalid``); ``action``
    returns the message to show, or raises RolloutRefused, whose text is shown instead.
    """
    project = _admin_project(request, slug)
    form = form_class(request.POST)
    if not form.is_valid():
        if not quiet_invalid:
            _form_errors(request, form)
        return redirect(page, slug=slug)
    try:
        level(request, action(project, form))
    except rollout.RolloutRefused as exc:
        _refused(request, exc)
    return redirect(page, slug=slug)


def _as_of(text: str) -> datetime | None:
    moment = parse_datetime(text) if text else None
    if moment is None and text and parse_date(text):
        moment = datetime.combine(parse_date(text), time.max)
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


@require_GET
def rollout_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    """Error budget, per-class automation, audited accuracy, controls and the audit log."""
    project = _admin_project(request, slug)
    as_of = _as_of(request.GET.get("as_of", ""))
    champion = rollout_selectors.alias_holder(project=project, alias=Alias.CHAMPION)
    context = {
        "project": project,
        "gate": rollout_selectors.gate_report(project=project),
        "classes": rollout_evidence.class_table(project=project, model_version=champion),
        "cost": rollout_evidence.audit_cost(project=project, model_version=champion),
        "epsilon_percent": f"{project.error_budget * 100:g}",
        "confidence_percent": f"{(1 - project.error_delta) * 100:g}",
        "estimate": rollout_selectors.auto_accuracy_estimate(project=project),
        "demotion": rollout_selectors.last_automatic_demotion(project=project),
        "champion": champion,
        "challenger": rollout_selectors.alias_holder(project=project, alias=Alias.CHALLENGER),
        "timeline": rollout_selectors.rollout_timeline(project=project),
        "aliases": rollout_selectors.alias_history(project=project),
        "as_of": as_of,
        "champion_at": as_of
        and rollout_selectors.alias_holder_at(project=project, alias=Alias.CHAMPION, when=as_of),
        "promote_form": PromoteForm(),
        "policy_form": PolicyForm.for_project(project),
        "traffic_percent": round(project.traffic_share * 100, 2),
    }
    return render(request, "reviewapp/rollout.html", context)


@require_POST
def rollout_promote(request: HttpRequest, slug: str) -> HttpResponse:
    """Promote one stage: with a passing gate, or with a written override reason."""

    def promote(project: Project, form: PromoteForm) -> str:
        stage = rollout.stage_promote(project=project, actor=request.user, **form.cleaned_data)
        return f"Promoted to {stage}."

    return _admin_action(request, slug, PromoteForm, promote, quiet_invalid=True)


@require_POST
def rollout_kill_switch(request: HttpRequest, slug: str) -> HttpResponse:
    """Turn the kill switch on (straight to shadow) or off."""

    def switch(project: Project, form: KillSwitchForm) -> str:
        enabled = form.cleaned_data["enabled"]
        rollout.kill_switch_set(
            project=project, actor=request.user, enabled=enabled, reason=form.cleaned_data["reason"]
        )
        return "Kill switch ON: humans decide every item." if enabled else "Kill switch off."

    return _admin_action(request, slug, KillSwitchForm, switch, level=messages.warning)


@require_POST
def rollout_traffic(request: HttpRequest, slug: str) -> HttpResponse:
    """Set the sticky traffic share for the partial stage."""

    def share(project: Project, form: ShareForm) -> str:
        rollout.traffic_share_set(project=project, actor=request.user, **form.share())
        return f"Traffic share set to {form.cleaned_data['percent']:g}%."

    return _admin_action(request, slug, ShareForm, share)


@require_POST
def rollout_policy(request: HttpRequest, slug: str) -> HttpResponse:
    """Change the error budget, audit rate, OOD threshold, priority labels, auto-promotion."""

    def policy(project: Project, form: PolicyForm) -> str:
        changed = rollout.policy_set(
            project=project,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            **form.changes(),
        )
        return f"Changed: {', '.join(changed) or 'nothing'}."

    return _admin_action(request, slug, PolicyForm, policy)


@require_GET
def rollout_challenger(request: HttpRequest, slug: str) -> HttpResponse:
    """Champion vs challenger on the same human-reviewed items, with the controls."""
    project = _admin_project(request, slug)
    context = {
        "project": project,
        "comparison": rollout_selectors.challenger_comparison(project=project),
        "champion": rollout_selectors.alias_holder(project=project, alias=Alias.CHAMPION),
        "challenger": rollout_selectors.alias_holder(project=project, alias=Alias.CHALLENGER),
        "versions": ModelVersion.objects.filter(project=project).order_by("-number"),
        "ab_percent": round(project.ab_share * 100, 2),
        "promote_form": PromoteForm(),
    }
    return render(request, "reviewapp/rollout_challenger.html", context)


@require_POST
def rollout_challenger_set(request: HttpRequest, slug: str) -> HttpResponse:
    """Enter a model version as challenger (shadow beside the champion)."""

    def enter(project: Project, form: ChallengerForm) -> str:
        version = get_object_or_404(
            ModelVersion, project=project, number=form.cleaned_data["model_version"]
        )
        rollout_champion.challenger_set(
            project=project,
            model_version=version,
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
        return f"v{version.number} is the challenger."

    return _admin_action(request, slug, ChallengerForm, enter, page="rollout-challenger")


@require_POST
def rollout_ab_share(request: HttpRequest, slug: str) -> HttpResponse:
    """Set the challenger's sticky A/B share of traffic."""

    def share(project: Project, form: ShareForm) -> str:
        rollout_champion.ab_share_set(project=project, actor=request.user, **form.share())
        return f"Challenger A/B share set to {form.cleaned_data['percent']:g}%."

    return _admin_action(request, slug, ShareForm, share, page="rollout-challenger")


@require_POST
def rollout_champion_promote(request: HttpRequest, slug: str) -> HttpResponse:
    """Swap the challenger in as champion (gated, or by override with a reason)."""

    def promote(project: Project, form: PromoteForm) -> str:
        version = rollout_champion.champion_promote(
            project=project, actor=request.user, **form.cleaned_data
        )
        return f"v{version.number} is the champion now."

    return _admin_action(
        request, slug, PromoteForm, promote, page="rollout-challenger", quiet_invalid=True
    )
