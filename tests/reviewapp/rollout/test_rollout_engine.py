"""The rollout engine through its services and pages: gates, promotion, demotion, audit log."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviewapp import tasks
from reviewapp.intake import prediction_service
from reviewapp.models import (
    Alias,
    DecidedBy,
    Outcome,
    Prediction,
    ReviewReason,
    RolloutEvent,
    RolloutEventKind,
    Stage,
)
from reviewapp.review import services as queues
from reviewapp.rollout import champion as rollout_champion
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout import services as rollout
from reviewapp.rollout import versions
from tests.factories import (
    ItemFactory,
    ModelVersionFactory,
    ProjectFactory,
    ReviewerFactory,
    RolloutAdminFactory,
)

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture
def setup():
    project = ProjectFactory(
        gate_min_reviews=30,
        gate_target_agreement=0.8,
        gate_confidence=0.9,
        confidence_threshold=0.9,
        priority_labels=[str(d) for d in range(2, 10)],  # only 0 and 1 are auto-decided
    )
    version = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=version, reason="t")
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    return project, version, reviewer, RolloutAdminFactory()


def _feed(project, version, reviewer, n, *, label="0", agree=True, confidence=0.99):
    """n items predicted `label`; a human decides every task (agreeing or not)."""
    tasks_done = []
    for _ in range(n):
        project.refresh_from_db()  # as the worker does: every item sees the current policy
        item = ItemFactory(project=project)
        prediction = Prediction.objects.create(
            item=item,
            model_version=version,
            label=label,
            confidence=confidence,
            probabilities={label: confidence},
            ood_score=0.0,
            latency_ms=1.0,
        )
        task = prediction_service.prediction_route(prediction=prediction)
        if task is None:
            continue
        human = label if agree else ("1" if label == "0" else "0")
        queues.decision_submit(task=task, reviewer=reviewer, verdict="correct", label=human)
        tasks_done.append(task)
    project.refresh_from_db()
    return tasks_done


def test_a_failing_gate_refuses_promotion_and_says_what_is_missing(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 12, label="0")
    gate = rollout_selectors.gate_report(project=project)
    assert not gate.passed
    lines = {line.scope: line for line in gate.lines}
    assert set(lines) == {"overall", "0", "1"}
    assert lines["0"].n == 12 and lines["0"].agreed == 12
    assert lines["1"].n == 0 and lines["1"].missing.startswith("~")
    assert "reviews of class 1" in lines["1"].missing
    with pytest.raises(rollout.RolloutRefused, match="class 1"):
        rollout.stage_promote(project=project, actor=admin, reason="try")
    project.refresh_from_db()
    assert project.stage == Stage.SHADOW
    assert not RolloutEvent.objects.filter(project=project, kind=RolloutEventKind.STAGE).exists()


def test_a_passing_gate_promotes_and_logs_the_evidence(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 20, label="0")
    _feed(project, version, reviewer, 20, label="1")
    _feed(project, version, reviewer, 5, label="7")  # priority: not part of the gate
    _feed(project, version, reviewer, 5, label="0", confidence=0.5)  # not auto-eligible
    gate = rollout_selectors.gate_report(project=project)
    assert gate.passed, gate.missing
    assert gate.lines[0].n == 40
    assert rollout.stage_promote(project=project, actor=admin, reason="ok") == Stage.SUPERVISED
    event = RolloutEvent.objects.get(project=project, kind=RolloutEventKind.STAGE)
    assert (event.from_value, event.to_value, event.actor) == ("shadow", "supervised", admin)
    assert event.evidence["gate"]["passed"] and event.evidence["lines"][0]["n"] == 40
    # The new stage starts its own evidence: the next gate is not passed yet.
    assert not rollout_selectors.gate_report(project=project).passed


def test_disagreement_keeps_the_gate_shut_and_override_needs_a_reason(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 20, label="0")
    _feed(project, version, reviewer, 20, label="1", agree=False)
    gate = rollout_selectors.gate_report(project=project)
    assert "more reviews of the same quality cannot pass" in " ".join(gate.missing)
    with pytest.raises(rollout.RolloutRefused):
        rollout.stage_promote(project=project, actor=admin, override_reason="   ")
    rollout.stage_promote(project=project, actor=admin, override_reason="Class 1 is rare here")
    event = RolloutEvent.objects.get(project=project, kind=RolloutEventKind.OVERRIDE)
    assert event.reason == "Class 1 is rare here" and event.evidence["override"]


def test_partial_stage_auto_accepts_inside_the_share_with_audit_probability(setup):
    project, version, reviewer, admin = setup
    project.stage, project.traffic_share, project.audit_rate = Stage.PARTIAL, 0.5, 0.2
    project.save()
    done = _feed(project, version, reviewer, 200, label="0")
    auto = Outcome.objects.filter(item__project=project, decided_by=DecidedBy.MODEL)
    audits = [t for t in done if t.reason == ReviewReason.AUDIT]
    assert 60 < auto.count() < 140  # about half minus the 20% audited
    assert set(auto.values_list("audit_probability", flat=True)) == {0.2}
    assert audits and all(t.audit_probability == 0.2 for t in audits)
    audited = Outcome.objects.filter(decision__task__reason=ReviewReason.AUDIT)
    assert set(audited.values_list("audit_probability", flat=True)) == {0.2}
    outside = Outcome.objects.filter(decision__task__reason=ReviewReason.SUPERVISED)
    assert outside.exists() and set(outside.values_list("audit_probability", flat=True)) == {1.0}
    estimate = rollout_selectors.auto_accuracy_estimate(project=project)
    assert estimate.population == auto.count() + audited.count()
    assert estimate.estimate == pytest.approx(audited.count() / 0.2 / estimate.population)


def test_audited_disagreement_demotes_automatically_and_says_why(setup):
    project, version, reviewer, admin = setup
    project.stage, project.audit_rate = Stage.AUTOMATED, 1.0
    project.save()
    _feed(project, version, reviewer, 10, label="0")
    assert project.stage == Stage.AUTOMATED
    done = _feed(project, version, reviewer, 40, label="0", agree=False)
    # Automated -> partial, and then, as the partial stage keeps seeing bad reviews of items
    # the model would decide, partial -> supervised; never further.
    assert project.stage == Stage.SUPERVISED
    audits = [t for t in done if t.reason == ReviewReason.AUDIT]
    assert 5 < len(audits) < 40
    steps = RolloutEvent.objects.filter(project=project, kind=RolloutEventKind.STAGE)
    assert [(e.from_value, e.to_value) for e in steps.order_by("created_at", "pk")] == [
        ("automated", "partial"),
        ("partial", "supervised"),
    ]
    event = steps.order_by("created_at", "pk").first()
    assert event.actor is None and event.actor_label == "system"
    assert event.evidence["automatic"] and event.evidence["trigger"] == "audited_agreement"
    assert "Automatic demotion" in event.reason
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("rollout", args=[project.slug])).content.decode()
    assert 'id="demotion-reason"' in page and "Automatic demotion" in page


def test_monitoring_alarm_steps_back_one_stage_and_never_below_supervised(setup):
    project, *_ = setup
    project.stage = Stage.AUTOMATED
    project.save()
    assert rollout.monitoring_alarm(project=project, kind="drift", detail={"mmd": 0.4})
    assert project.stage == Stage.PARTIAL
    assert rollout.monitoring_alarm(project=project, kind="ood_rate", detail={"rate": 0.3})
    assert project.stage == Stage.SUPERVISED
    assert not rollout.monitoring_alarm(project=project, kind="drift", detail={})
    assert project.stage == Stage.SUPERVISED
    reasons = list(RolloutEvent.objects.filter(kind="stage").values_list("reason", flat=True))
    assert any("drift" in r for r in reasons) and any(
        "out of domain" in r.replace("ood", "out of domain") for r in reasons
    )


def test_kill_switch_drops_to_shadow_and_humans_decide_blind(setup):
    project, version, reviewer, admin = setup
    project.stage, project.traffic_share, project.audit_rate = Stage.PARTIAL, 1.0, 0.0
    project.save()
    rollout.kill_switch_set(project=project, actor=admin, enabled=True, reason="incident 42")
    assert project.stage == Stage.SHADOW and project.kill_switch
    done = _feed(project, version, reviewer, 5, label="0")
    assert [t.reason for t in done] == [ReviewReason.SHADOW] * 5
    assert not done[0].decisions.get().suggestion_shown
    with pytest.raises(rollout.RolloutRefused, match="kill switch"):
        rollout.stage_promote(project=project, actor=admin, override_reason="x")
    event = RolloutEvent.objects.get(kind=RolloutEventKind.KILL_SWITCH)
    assert event.from_value == "off, stage partial" and event.to_value == "on, stage shadow"
    assert event.evidence["stage_before"] == "partial" and event.reason == "incident 42"


def test_share_and_policy_changes_are_logged_with_old_and_new(setup):
    project, _, _, admin = setup
    rollout.traffic_share_set(project=project, actor=admin, share=0.25, reason="widen")
    rollout.policy_set(
        project=project,
        actor=admin,
        reason="stricter",
        confidence_threshold=0.97,
        class_thresholds={"1": 0.99},
    )
    with pytest.raises(rollout.RolloutRefused):
        rollout.policy_set(project=project, actor=admin, reason="x", class_thresholds={"x": 1})
    traffic = RolloutEvent.objects.get(kind=RolloutEventKind.TRAFFIC)
    assert (traffic.from_value, traffic.to_value) == ("traffic share 0%", "traffic share 25%")
    policy = RolloutEvent.objects.get(kind=RolloutEventKind.THRESHOLD)
    assert policy.evidence["changes"]["confidence_threshold"] == [0.9, 0.97]
    project.refresh_from_db()
    assert project.class_thresholds == {"1": 0.99}


def test_champion_history_is_answerable_for_any_past_date(setup):
    project, v1, _, admin = setup
    v2 = ModelVersionFactory(project=project)
    before = timezone.now()
    rollout_champion.challenger_set(
        project=project, model_version=v2, actor=admin, reason="new run"
    )
    with pytest.raises(rollout.RolloutRefused, match="gate"):
        rollout_champion.champion_promote(project=project, actor=admin)
    rollout_champion.champion_promote(project=project, actor=admin, override_reason="hotfix")
    after = timezone.now()
    assert versions.champion_of(project) == v2 and rollout.challenger_of(project) is None
    at = rollout_selectors.alias_holder_at
    assert at(project=project, alias=Alias.CHAMPION, when=before).model_version == v1
    assert at(project=project, alias=Alias.CHAMPION, when=after).model_version == v2
    assert at(project=project, alias=Alias.CHAMPION, when=before - timedelta(days=9)) is None
    kinds = list(RolloutEvent.objects.order_by("created_at", "pk").values_list("kind", flat=True))
    assert kinds.count(RolloutEventKind.ALIAS) >= 3 and RolloutEventKind.OVERRIDE in kinds


def test_rollout_check_task_name_is_pinned_and_it_runs(setup):
    project, *_ = setup
    assert tasks.rollout_check.name == "reviewapp.rollout_check"
    assert tasks.rollout_check.run(project.pk) == [
        {"project": project.slug, "demoted": False, "promoted": None}
    ]


def test_auto_promotion_after_the_gate_passed_long_enough(setup):
    project, version, reviewer, admin = setup
    project.auto_promote_after_hours = 1
    project.save()
    _feed(project, version, reviewer, 20, label="0")
    _feed(project, version, reviewer, 20, label="1")
    assert rollout.auto_promote_check(project=project) is None  # passing since now
    project.refresh_from_db()
    assert project.gate_passing_since is not None
    project.gate_passing_since -= timedelta(hours=2)
    project.save(update_fields=["gate_passing_since"])
    assert rollout.auto_promote_check(project=project) == Stage.SUPERVISED
    assert RolloutEvent.objects.get(kind=RolloutEventKind.STAGE).actor_label == "system"


def _client(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def test_only_rollout_admins_reach_the_rollout_pages(setup):
    project, _, reviewer, admin = setup
    urls = [
        reverse("rollout", args=[project.slug]),
        reverse("rollout-challenger", args=[project.slug]),
    ]
    posts = [
        (reverse("rollout-promote", args=[project.slug]), {"override_reason": "x"}),
        (reverse("rollout-kill-switch", args=[project.slug]), {"enabled": "on", "reason": "x"}),
        (reverse("rollout-traffic", args=[project.slug]), {"percent": "50", "reason": "x"}),
    ]
    for url in urls:
        assert _client(admin).get(url).status_code == 200
        assert _client(reviewer).get(url).status_code == 403
        anonymous = _client().get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    for url, data in posts:
        assert _client(reviewer).post(url, data).status_code == 403
        assert _client().post(url, data).status_code == 302
        assert _client(admin, enforce_csrf_checks=True).post(url, data).status_code == 403
        assert _client(admin).get(url).status_code == 405
    project.refresh_from_db()
    assert project.stage == Stage.SHADOW and not project.kill_switch
    assert project.traffic_share == 0 and not RolloutEvent.objects.exclude(kind="alias").exists()


def test_admin_pages_show_gate_numbers_and_controls_work(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 8, label="0")
    client = _client(admin)
    page = client.get(reverse("rollout", args=[project.slug])).content.decode()
    assert 'data-scope="overall"' in page and "more reviews of class 1" in page
    response = client.post(
        reverse("rollout-promote", args=[project.slug]), {"reason": "go"}, follow=True
    )
    assert "The gate does not pass" in response.content.decode()
    client.post(reverse("rollout-traffic", args=[project.slug]), {"percent": "10", "reason": "x"})
    client.post(
        reverse("rollout-kill-switch", args=[project.slug]), {"enabled": "on", "reason": "test"}
    )
    project.refresh_from_db()
    assert project.traffic_share == pytest.approx(0.1) and project.kill_switch
    page = client.get(reverse("rollout", args=[project.slug])).content.decode()
    assert "kill-switch-on" in page and "test" in page and "traffic share 10%" in page
