"""Rollout writes: promotion through gates, automatic demotion, kill switch, shares, policy,
champion/challenger. Every change is a RolloutEvent with actor, reason and evidence.

Races are settled by the database: promotions lock the project row (``select_for_update``), and
demotions are conditional updates on the stage they saw, so two concurrent checks demote once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from reviewapp.models import (
    Alias,
    ClassAutomation,
    ModelVersion,
    Project,
    ReviewReason,
    RolloutEvent,
    RolloutEventKind,
    Stage,
)
from reviewapp.models.projects import email_list_validate
from reviewapp.rollout import automation
from reviewapp.rollout import policy as rollout_policy
from reviewapp.rollout import selectors as rollout_selectors

logger = logging.getLogger(__name__)


class RolloutRefused(ValidationError):
    """A rollout change that the policy does not allow; the message says why."""


def challenger_of(project: Project) -> ModelVersion | None:
    """The project's current challenger, if any."""
    return rollout_selectors.alias_holder(project=project, alias=Alias.CHALLENGER)


def _actor_label(actor) -> str:
    return actor.get_username() if actor is not None else "system"


def _event(
    *,
    project: Project,
    kind: str,
    actor,
    reason: str,
    from_value: str = "",
    to_value: str = "",
    evidence: dict[str, Any] | None = None,
) -> RolloutEvent:
    return RolloutEvent.objects.create(
        project=project,
        kind=kind,
        actor=actor,
        actor_label=_actor_label(actor),
        from_value=from_value[:200],
        to_value=to_value[:200],
        reason=reason,
        evidence=evidence or {},
    )


def _locked(project: Project) -> Project:
    """Re-read the project under a row lock (caller is inside transaction.atomic)."""
    return Project.objects.select_for_update().get(pk=project.pk)


def _require_reason(reason: str, what: str) -> str:
    if not (reason or "").strip():
        raise RolloutRefused(f"{what} needs a written reason.")
    return reason.strip()


def _evidence_now(project: Project) -> dict[str, Any]:
    """The numbers at this moment: the per-class gate and the audited accuracy."""
    estimate = rollout_selectors.auto_accuracy_estimate(project=project)
    return {
        **rollout_selectors.gate_report(project=project).evidence(),
        "class_thresholds": dict(project.class_thresholds or {}),
        "auto_accuracy_ipw": {
            "population": estimate.population,
            "audited": estimate.audited,
            "estimate": estimate.estimate,
        },
    }


def stage_promote(*, project: Project, actor, reason: str = "", override_reason: str = "") -> str:
    """Move the project one stage up when its gate passes, or by override with a written reason.

    Returns the new stage; raises RolloutRefused (saying what is missing) otherwise.
    """
    with transaction.atomic():
        locked = _locked(project)
        to_stage = rollout_policy.next_stage(locked.stage)
        if to_stage is None:
            raise RolloutRefused("The project is already fully automated.")
        if locked.kill_switch:
            raise RolloutRefused("The kill switch is on; turn it off before promoting.")
        gate = rollout_selectors.gate_report(project=locked)
        override = (override_reason or "").strip()
        if not gate.passed and not override:
            raise RolloutRefused("The gate does not pass: " + "; ".join(gate.missing))
        evidence = {**_evidence_now(locked), "override": bool(override and not gate.passed)}
        from_stage = locked.stage
        locked.stage, locked.stage_entered_at = to_stage, timezone.now()
        locked.gate_passing_since = None
        locked.save(update_fields=["stage", "stage_entered_at", "gate_passing_since"])
        kind = RolloutEventKind.OVERRIDE if evidence["override"] else RolloutEventKind.STAGE
        text = override if evidence["override"] else (reason or "Gate passed").strip()
        _event(
            project=locked,
            kind=kind,
            actor=actor,
            reason=text,
            from_value=from_stage,
            to_value=to_stage,
            evidence=evidence,
        )
    logger.info("rollout.promoted project=%s %s->%s", project.slug, from_stage, to_stage)
    project.refresh_from_db()
    return to_stage


def stage_demote(
    *,
    project: Project,
    reason: str,
    evidence: dict[str, Any],
    actor=None,
    from_stage: str | None = None,
) -> bool:
    """Step back one stage (automated -> partial -> supervised); False if it already moved.

    A conditional update on the stage the caller saw, so concurrent checks demote only once.
    """
    seen = from_stage or project.stage
    to_stage = rollout_policy.previous_stage(seen)
    if to_stage is None:
        return False
    with transaction.atomic():
        moved = Project.objects.filter(pk=project.pk, stage=seen).update(
            stage=to_stage, stage_entered_at=timezone.now(), gate_passing_since=None
        )
        if moved:
            _event(
                project=project,
                kind=RolloutEventKind.STAGE,
                actor=actor,
                reason=reason,
                from_value=seen,
                to_value=to_stage,
                evidence={**evidence, "automatic": actor is None},
            )
    project.refresh_from_db()
    if moved:
        logger.warning(
            "rollout.demoted project=%s %s->%s: %s", project.slug, seen, to_stage, reason
        )
    return bool(moved)


def demotion_check(*, project: Project) -> bool:
    """Recompute the classes (graduate, watch, demote); demote the stage on an overall breach.

    Returns True when the project stage was demoted.
    """
    done = automation.classes_recompute(project=project)
    overall = done.overall
    if overall is None or not overall.breached or project.stage not in _AUTOMATING:
        return False
    reason = (
        f"Automatic demotion: {overall.errors} of {overall.audits} audits of automatic decisions "
        f"were wrong; the lower bound of their error, {overall.lower:.2%}, is above the error "
        f"budget {overall.epsilon:.2%} (anytime-valid betting test, confidence "
        f"{1 - overall.alpha:.0%})."
    )
    evidence = {
        "trigger": "audited_error",
        "audits": overall.audits,
        "errors": overall.errors,
        "lower": round(overall.lower, 4),
        "epsilon": overall.epsilon,
        "alpha": overall.alpha,
    }
    return stage_demote(project=project, reason=reason, evidence=evidence, from_stage=project.stage)


_AUTOMATING = rollout_policy.AUTOMATING_STAGES


def monitoring_alarm(
    *, project: Project, kind: str, detail: dict[str, Any], summary: str = ""
) -> bool:
    """Hook for monitoring: a drift or out-of-domain-rate alarm demotes one stage at once."""
    project.refresh_from_db()
    if project.stage not in rollout_policy.AUTOMATING_STAGES:
        return False
    reason = f"Automatic demotion: monitoring raised a {kind.replace('_', ' ')} alarm."
    if summary:
        reason = f"{reason} {summary}"
    return stage_demote(
        project=project,
        reason=reason,
        evidence={"trigger": kind, "detail": detail},
        from_stage=project.stage,
    )


def decision_observed(*, decision) -> bool:
    """Called after every human decision: recompute the classes after every audit (the monitor
    acts at once) and, in batches, after the other decisions (about one in RECOMPUTE_EVERY)."""
    project = decision.task.project
    if decision.task.reason != ReviewReason.AUDIT and decision.pk % automation.RECOMPUTE_EVERY:
        return False
    return demotion_check(project=project)


def kill_switch_set(*, project: Project, actor, enabled: bool, reason: str) -> None:
    """Flip the kill switch; on, the project drops straight to shadow (humans decide all)."""
    reason = _require_reason(reason, "The kill switch")
    with transaction.atomic():
        locked = _locked(project)
        if locked.kill_switch == enabled:
            return
        before = f"{'on' if locked.kill_switch else 'off'}, stage {locked.stage}"
        evidence = {**_evidence_now(locked), "stage_before": locked.stage}
        locked.kill_switch = enabled
        fields = ["kill_switch"]
        if enabled and locked.stage != Stage.SHADOW:
            locked.stage, locked.stage_entered_at = Stage.SHADOW, timezone.now()
            fields += ["stage", "stage_entered_at"]
        locked.save(update_fields=fields)
        _event(
            project=locked,
            kind=RolloutEventKind.KILL_SWITCH,
            actor=actor,
            reason=reason,
            from_value=before,
            to_value=f"{'on' if enabled else 'off'}, stage {locked.stage}",
            evidence=evidence,
        )
    project.refresh_from_db()


SHARE_NAMES = {"traffic_share": "traffic share", "ab_share": "challenger A/B share"}


def _share_set(*, project: Project, actor, field: str, share: float, reason: str) -> None:
    what = SHARE_NAMES[field]
    reason = _require_reason(reason, f"A {what} change")
    if not 0 <= share <= 1:
        raise RolloutRefused(f"The {what} must be between 0% and 100%.")
    with transaction.atomic():
        locked = _locked(project)
        before = getattr(locked, field)
        if before == share:
            return
        setattr(locked, field, share)
        locked.save(update_fields=[field])
        _event(
            project=locked,
            kind=RolloutEventKind.TRAFFIC,
            actor=actor,
            reason=reason,
            from_value=f"{what} {before:.0%}",
            to_value=f"{what} {share:.0%}",
            evidence=_evidence_now(locked),
        )
    project.refresh_from_db()


def traffic_share_set(*, project: Project, actor, share: float, reason: str) -> None:
    """Set the sticky share of traffic the model may decide in the partial stage (0-1)."""
    _share_set(project=project, actor=actor, field="traffic_share", share=share, reason=reason)


POLICY_FIELDS = (
    "error_budget",
    "error_delta",
    "ood_threshold",
    "audit_rate",
    "priority_labels",
    "auto_promote_after_hours",
    "alert_top_k",
    "alert_min_probability",
    "alert_deadline_minutes",
    "alert_oncall_emails",
    "alert_escalation_emails",
    "review_order",
)
BUDGET_FIELDS = {"error_budget", "error_delta"}


def _policy_check(project: Project, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise RolloutRefused(f"Not a policy setting: {', '.join(sorted(unknown))}.")
    if "audit_rate" in changes and not 0 <= changes["audit_rate"] <= 1:
        raise RolloutRefused("audit rate must be between 0 and 1.")
    if "alert_min_probability" in changes and not 0 <= changes["alert_min_probability"] <= 1:
        raise RolloutRefused("alert min probability must be between 0 and 1.")
    if "error_budget" in changes and not 0 < changes["error_budget"] <= 0.5:
        raise RolloutRefused("The error budget ε must be above 0% and at most 50%.")
    if "error_delta" in changes and not 0 < changes["error_delta"] <= 0.5:
        raise RolloutRefused("δ must be above 0% and at most 50% (confidence 50% to 100%).")
    for name in ("alert_oncall_emails", "alert_escalation_emails"):
        if name in changes:
            try:
                email_list_validate(changes[name])
            except ValidationError as exc:
                raise RolloutRefused(f"{name.replace('_', ' ')}: {exc.messages[0]}.") from None
    labels = set(map(str, project.labels))
    stray = set(map(str, changes.get("priority_labels") or [])) - labels
    if stray:
        raise RolloutRefused(f"Priority labels not in the project: {', '.join(sorted(stray))}.")


def policy_set(*, project: Project, actor, reason: str, **changes: Any) -> dict[str, list]:
    """Change the error budget, audit rate, OOD threshold, priority labels, auto-promotion,
    alert settings or the desk's review order.

    Returns {field: [old, new]} of what changed; logged as one threshold event. A new error
    budget voids every class's certification: the classes are re-derived from the evidence.
    """
    reason = _require_reason(reason, "A policy change")
    _policy_check(project, changes)
    with transaction.atomic():
        locked = _locked(project)
        diff = {k: [getattr(locked, k), v] for k, v in changes.items() if getattr(locked, k) != v}
        if not diff:
            return {}
        for name, (_, new) in diff.items():
            setattr(locked, name, new)
        fields = list(diff)
        if BUDGET_FIELDS & set(diff):
            # The old knobs, derived: the agreement target and confidence the holdout check and
            # the dashboard still read.
            locked.gate_target_agreement = 1 - locked.error_budget
            locked.gate_confidence = 1 - locked.error_delta
            fields += ["gate_target_agreement", "gate_confidence"]
            ClassAutomation.objects.filter(project=locked).delete()
        locked.save(update_fields=fields)
        _event(
            project=locked,
            kind=RolloutEventKind.THRESHOLD,
            actor=actor,
            reason=reason,
            from_value=", ".join(f"{k}={old}" for k, (old, _) in diff.items()),
            to_value=", ".join(f"{k}={new}" for k, (_, new) in diff.items()),
            evidence={"changes": diff, **_evidence_now(locked)},
        )
    project.refresh_from_db()
    if BUDGET_FIELDS & set(diff):
        automation.classes_recompute(project=project)
    return diff


def auto_promote_check(*, project: Project) -> str | None:
    """Promote when the gate has passed for the configured time; returns the new stage if so."""
    if project.auto_promote_after_hours is None or project.kill_switch:
        return None
    gate = rollout_selectors.gate_report(project=project)
    if not gate.passed:
        Project.objects.filter(pk=project.pk).update(gate_passing_since=None)
        return None
    now = timezone.now()
    if project.gate_passing_since is None:
        Project.objects.filter(pk=project.pk, gate_passing_since__isnull=True).update(
            gate_passing_since=now
        )
        project.refresh_from_db()
    if now - project.gate_passing_since < timedelta(hours=project.auto_promote_after_hours):
        return None
    hours = project.auto_promote_after_hours
    return stage_promote(
        project=project, actor=None, reason=f"Automatic promotion: the gate passed for {hours} h."
    )


def project_check(*, project: Project) -> dict[str, Any]:
    """The periodic check: classes recomputed (graduate, demote), then optional promotion."""
    demoted = demotion_check(project=project)
    promoted = None if demoted else auto_promote_check(project=project)
    return {"project": project.slug, "demoted": demoted, "promoted": promoted}
