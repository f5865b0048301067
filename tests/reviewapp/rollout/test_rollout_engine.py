"""The rollout engine through its services and pages: the error budget, per-class gates,
promotion, per-class graduation and demotion, the audit log."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviewapp import tasks
from reviewapp.intake import prediction_service
from reviewapp.models import (
    Alias,
    AutomationState,
    ClassAutomation,
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
from reviewapp.rollout import ltt, versions
from reviewapp.rollout import selectors as rollout_selectors
from reviewapp.rollout import services as rollout
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
        error_budget=0.1,
        error_delta=0.2,  # two classes: each tested at 0.1, so 22 clean blind labels certify one
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


def _earned(project, version, reviewer, label="0", n=25):
    """n blind shadow reviews of class `label`, then the periodic check: the class graduates."""
    stage = project.stage
    project.stage = Stage.SHADOW
    project.save(update_fields=["stage"])
    _feed(project, version, reviewer, n, label=label)
    rollout.project_check(project=project)
    project.stage = stage
    project.save(update_fields=["stage"])
    project.refresh_from_db()


def test_a_failing_gate_refuses_promotion_and_says_what_is_missing(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 12, label="0")
    gate = rollout_selectors.gate_report(project=project)
    assert not gate.passed
    lines = {line.scope: line for line in gate.lines}
    assert set(lines) == {"0", "1"}  # one line per class that may earn automation
    assert lines["0"].n == 12 and lines["0"].agreed == 12
    assert lines["0"].missing == "class 0: needs ~10 more blind reviews"
    assert lines["1"].n == 0 and "class 1: needs ~22 more blind reviews" == lines["1"].missing
    with pytest.raises(rollout.RolloutRefused, match="class 1"):
        rollout.stage_promote(project=project, actor=admin, reason="try")
    project.refresh_from_db()
    assert project.stage == Stage.SHADOW
    assert not RolloutEvent.objects.filter(project=project, kind=RolloutEventKind.STAGE).exists()


def test_one_certified_class_passes_the_gate_and_promotion_logs_the_evidence(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 25, label="0")
    _feed(project, version, reviewer, 5, label="7")  # priority: not part of the gate
    _feed(project, version, reviewer, 5, label="1", confidence=0.5)  # too few for class 1
    gate = rollout_selectors.gate_report(project=project)
    assert gate.passed, gate.missing
    assert gate.certified == {"0": pytest.approx(gate.certified["0"])}
    # Every blind label of class 0 had confidence 0.99: nothing below it was ever seen wrong,
    # so the fixed sequence runs down the whole grid.
    assert gate.certified["0"] == ltt.GRID[-1]
    assert rollout.stage_promote(project=project, actor=admin, reason="ok") == Stage.SUPERVISED
    event = RolloutEvent.objects.get(project=project, kind=RolloutEventKind.STAGE)
    assert (event.from_value, event.to_value, event.actor) == ("shadow", "supervised", admin)
    lines = {line["scope"]: line for line in event.evidence["lines"]}
    assert event.evidence["gate"]["passed"] and lines["0"]["n"] == 25 and lines["0"]["passed"]
    assert not lines["1"]["passed"] and event.evidence["error_budget"]["epsilon"] == 0.1


def test_disagreement_keeps_a_class_shut_and_override_needs_a_reason(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 20, label="1", agree=False)
    gate = rollout_selectors.gate_report(project=project)
    assert "more of the same cannot pass" in " ".join(gate.missing)
    with pytest.raises(rollout.RolloutRefused):
        rollout.stage_promote(project=project, actor=admin, override_reason="   ")
    rollout.stage_promote(project=project, actor=admin, override_reason="Class 1 is rare here")
    event = RolloutEvent.objects.get(project=project, kind=RolloutEventKind.OVERRIDE)
    assert event.reason == "Class 1 is rare here" and event.evidence["override"]


def test_classes_graduate_one_by_one_and_only_they_are_automated(setup):
    project, version, reviewer, admin = setup
    _feed(project, version, reviewer, 25, label="0")
    _feed(project, version, reviewer, 10, label="1")
    rollout.project_check(project=project)
    rows = {r.label: r for r in ClassAutomation.objects.filter(model_version=version)}
    assert rows["0"].state == AutomationState.AUTOMATED and rows["0"].blind_n == 25
    assert rows["1"].state == AutomationState.MANUAL and rows["1"].needed == 12
    project.refresh_from_db()
    assert project.class_thresholds == {"0": rows["0"].threshold, "1": 2.0}
    assert project.class_audit_rates == {"0": 0.5}  # freshly automated: audited heavily
    event = RolloutEvent.objects.get(kind=RolloutEventKind.THRESHOLD)
    assert "Class 0 earned automation" in event.reason and event.evidence["class"] == "0"
    project.stage, project.audit_rate = Stage.AUTOMATED, 0.0
    project.save()
    zero = _feed(project, version, reviewer, 40, label="0")
    one = _feed(project, version, reviewer, 10, label="1")
    assert {t.reason for t in one} == {ReviewReason.SHADOW}  # class 1 stays with people
    assert {t.reason for t in zero} == {ReviewReason.AUDIT}  # class 0: audited or automatic
    auto = Outcome.objects.filter(item__project=project, decided_by=DecidedBy.MODEL)
    assert auto.count() == 40 - len(zero) and auto.count() > 5
    # A new champion never inherits the thresholds: its classes start with people.
    v2 = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=v2, reason="t")
    rollout.project_check(project=project)
    project.refresh_from_db()
    assert project.class_thresholds == {"0": 2.0, "1": 2.0}
    assert not ClassAutomation.objects.filter(model_version=v2, state="automated").exists()


def test_partial_stage_auto_accepts_inside_the_share_with_audit_probability(setup):
    project, version, reviewer, admin = setup
    _earned(project, version, reviewer)
    project.stage, project.traffic_share, project.audit_rate = Stage.PARTIAL, 0.5, 0.2
    project.class_audit_rates = {}
    project.save()
    done = _feed(project, version, reviewer, 200, label="0")
    auto = Outcome.objects.filter(item__project=project, decided_by=DecidedBy.MODEL)
    audits = [t for t in done if t.reason == ReviewReason.AUDIT]
    assert 50 < auto.count() < 140  # about half minus the audited share
    rates = set(auto.values_list("audit_probability", flat=True))
    assert rates and all(0.2 <= r <= 0.5 for r in rates)  # adaptive, never below the floor
    assert audits and all(0.2 <= t.audit_probability <= 0.5 for t in audits)
    outside = Outcome.objects.filter(decision__task__reason=ReviewReason.SUPERVISED)
    assert outside.exists() and set(outside.values_list("audit_probability", flat=True)) == {1.0}
    estimate = rollout_selectors.auto_accuracy_estimate(project=project)
    audited = Outcome.objects.filter(decision__task__reason=ReviewReason.AUDIT)
    assert estimate.population == auto.count() + audited.count()


def test_audited_errors_demote_the_class_alone_and_say_why(setup):
    project, version, reviewer, admin = setup
    _earned(project, version, reviewer, label="0")
    _earned(project, version, reviewer, label="1")
    project.stage, project.audit_rate = Stage.AUTOMATED, 1.0
    project.save()
    _feed(project, version, reviewer, 10, label="0")
    done = _feed(project, version, reviewer, 40, label="0", agree=False)
    row = ClassAutomation.objects.get(model_version=version, label="0")
    assert row.state == AutomationState.DEMOTED and row.error_lower > 0.1
    assert 1 < row.audit_errors < 40  # demoted within a few bad audits, not at the end
    assert ClassAutomation.objects.get(model_version=version, label="1").state == "automated"
    project.refresh_from_db()
    assert project.class_thresholds["0"] == 2.0 and project.class_thresholds["1"] <= 1
    assert done[-1].reason == ReviewReason.SHADOW  # class 0 is back with people
    event = RolloutEvent.objects.filter(kind=RolloutEventKind.THRESHOLD).latest("created_at")
    assert "Class 0 demoted" in event.reason and event.evidence["automatic"]
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("rollout", args=[project.slug])).content.decode()
    # The wrong answers fed after the demotion were blind shadow reviews: fresh evidence that
    # more of the same model cannot re-certify the class.
    assert 'data-class="0" data-state="demoted"' in page
    assert "more of the same cannot pass" in page
    assert 'data-class="1" data-state="automated"' in page


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


def test_share_and_error_budget_changes_are_logged_and_rederive_the_classes(setup):
    project, version, reviewer, admin = setup
    _earned(project, version, reviewer, label="0")
    rollout.traffic_share_set(project=project, actor=admin, share=0.25, reason="widen")
    rollout.policy_set(project=project, actor=admin, reason="stricter", error_budget=0.01)
    with pytest.raises(rollout.RolloutRefused):
        rollout.policy_set(project=project, actor=admin, reason="x", class_thresholds={"x": 1})
    with pytest.raises(rollout.RolloutRefused, match="error budget"):
        rollout.policy_set(project=project, actor=admin, reason="x", error_budget=0)
    traffic = RolloutEvent.objects.get(kind=RolloutEventKind.TRAFFIC)
    assert (traffic.from_value, traffic.to_value) == ("traffic share 0%", "traffic share 25%")
    policy = RolloutEvent.objects.get(kind=RolloutEventKind.THRESHOLD, actor=admin)
    assert policy.evidence["changes"]["error_budget"] == [0.1, 0.01]
    project.refresh_from_db()
    # 25 clean labels prove 10%, not 1%: class 0 goes back to people; the old knobs follow.
    assert project.class_thresholds == {"0": 2.0, "1": 2.0}
    assert project.gate_target_agreement == pytest.approx(0.99)


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
    _feed(project, version, reviewer, 25, label="0")
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
    rollout.project_check(project=project)
    client = _client(admin)
    page = client.get(reverse("rollout", args=[project.slug])).content.decode()
    assert 'id="class-table"' in page and "needs ~22 more blind reviews" in page
    assert "may be wrong at most <b>10%</b> of the time, with <b>80%</b> confidence" in page
    response = client.post(
        reverse("rollout-promote", args=[project.slug]), {"reason": "go"}, follow=True
    )
    assert "The gate does not pass" in response.content.decode()
    client.post(
        reverse("rollout-policy", args=[project.slug]),
        {
            "error_budget_percent": "2",
            "confidence_percent": "95",
            "audit_rate": "0.05",
            "alert_top_k": "0",
            "alert_min_probability": "0.5",
            "alert_deadline_minutes": "10",
            "review_order": "informative",
            "reason": "tighter",
        },
    )
    project.refresh_from_db()
    assert (project.error_budget, project.error_delta) == (0.02, pytest.approx(0.05))
    client.post(reverse("rollout-traffic", args=[project.slug]), {"percent": "10", "reason": "x"})
    client.post(
        reverse("rollout-kill-switch", args=[project.slug]), {"enabled": "on", "reason": "test"}
    )
    project.refresh_from_db()
    assert project.traffic_share == pytest.approx(0.1) and project.kill_switch
    page = client.get(reverse("rollout", args=[project.slug])).content.decode()
    assert "kill-switch-on" in page and "test" in page and "traffic share 10%" in page
