"""Champion / challenger writes: enter a challenger, give it an A/B share, promote it (gated).

The challenger predicts every item beside the champion (``reviewapp.tasks.predict_item``); the
comparison on the same human-reviewed items is ``rollout_selectors.challenger_comparison``.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from reviewapp.models import Alias, AliasAssignment, ModelVersion, Project, RolloutEventKind
from reviewapp.rollout import automation, ltt, versions
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout.holdout import holdout_check
from reviewapp.rollout.policy import Policy
from reviewapp.rollout.services import (
    RolloutRefused,
    _event,
    _locked,
    _require_reason,
    _share_set,
    challenger_of,
)

logger = logging.getLogger(__name__)


def challenger_set(
    *, project: Project, model_version: ModelVersion, actor, reason: str
) -> AliasAssignment:
    """Enter a model version as challenger: it predicts every item in shadow beside the champion."""
    reason = _require_reason(reason, "A challenger")
    if model_version == rollout_selectors.alias_holder(project=project, alias=Alias.CHAMPION):
        raise RolloutRefused("That version is the champion already.")
    return versions.alias_set(
        project=project,
        alias=Alias.CHALLENGER,
        model_version=model_version,
        actor=actor,
        reason=reason,
    )


def _holdout_of(version: ModelVersion) -> dict | None:
    """The frozen-holdout comparison of the run that trained this version (None without one)."""
    run = getattr(version, "training_run", None)
    return (run.evaluation or {}).get("sets", {}).get("holdout") if run is not None else None


def champion_promote(*, project: Project, actor, reason: str = "", override_reason: str = ""):
    """Swap the challenger in as champion, atomically, when its gate passes (or by override).

    A challenger worse than the champion on its run's frozen holdout is refused whatever the
    gate or an override says (``holdout.holdout_check``; issue 18).

    The new champion inherits none of the old one's class thresholds or audit rates (cached on
    the project, read by the router): every class is back with people in the same transaction,
    then ``automation.classes_recompute`` certifies the classes its own blind labels earn.
    """
    with transaction.atomic():
        locked = _locked(project)
        challenger = challenger_of(locked)
        if challenger is None:
            raise RolloutRefused("There is no challenger to promote.")
        holdout = holdout_check(_holdout_of(challenger))
        if not holdout.allowed:
            raise RolloutRefused(f"Promotion refused: {holdout.message}.")
        gate = rollout_selectors.challenger_gate(project=locked, challenger=challenger)
        override = (override_reason or "").strip()
        if not gate.passed and not override:
            raise RolloutRefused("The challenger's gate does not pass: " + "; ".join(gate.missing))
        text = override if override and not gate.passed else (reason or "Challenger gate passed")
        previous = rollout_selectors.alias_holder(project=locked, alias=Alias.CHAMPION)
        now = timezone.now()
        AliasAssignment.objects.filter(
            project=locked, alias=Alias.CHALLENGER, ended_at__isnull=True
        ).update(ended_at=now)
        versions.alias_set(
            project=locked, alias=Alias.CHAMPION, model_version=challenger, actor=actor, reason=text
        )
        locked.ab_share = 0.0
        locked.class_thresholds = {
            label: ltt.NEVER for label in Policy.from_project(locked).candidate_labels()
        }
        locked.class_audit_rates = {}
        locked.save(update_fields=["ab_share", "class_thresholds", "class_audit_rates"])
        _event(
            project=locked,
            kind=RolloutEventKind.OVERRIDE
            if override and not gate.passed
            else RolloutEventKind.ALIAS,
            actor=actor,
            reason=text,
            from_value=f"champion v{previous.number}" if previous else "",
            to_value=f"champion v{challenger.number} (challenger retired)",
            evidence={
                **gate.evidence(),
                "override": bool(override and not gate.passed),
                "holdout": dict(holdout.evidence),
            },
        )
    automation.classes_recompute(project=project)  # refreshes ``project``
    return challenger


def ab_share_set(*, project: Project, actor, share: float, reason: str) -> None:
    """Set the sticky A/B share of traffic on which the challenger acts instead (0-1)."""
    if share > 0 and challenger_of(project) is None:
        raise RolloutRefused("There is no challenger to give traffic to.")
    _share_set(project=project, actor=actor, field="ab_share", share=share, reason=reason)
