"""Alerts: the priority rule (top1, top k), raising once, escalation by the clock, the desk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from reviewapp import jobs
from reviewapp.intake import prediction_service
from reviewapp.models import (
    Alert,
    AlertEvent,
    ReviewReason,
    Stage,
    TaskStatus,
    Verdict,
    Webhook,
    WebhookDelivery,
)
from reviewapp.review import alerts, claim, webhooks
from reviewapp.review import services as queues
from reviewapp.rollout import services as rollout
from reviewapp.rollout.forms import PolicyForm
from tests.factories import (
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
)

pytestmark = pytest.mark.django_db

LABELS = ["normal", "stroke", "bleed"]


@pytest.fixture
def sent(monkeypatch):
    """The tasks services send (by name, with their arguments), instead of a broker."""
    calls: list[tuple] = []

    def record(name, *args, **options):
        calls.append((name, args))

    monkeypatch.setattr(jobs, "job_send", record)
    monkeypatch.setattr(jobs, "job_send_on_commit", record)
    return calls


def _project(**fields):
    defaults = {
        "labels": LABELS,
        "priority_labels": ["stroke"],
        "stage": Stage.AUTOMATED,
        "traffic_share": 1.0,
        "confidence_threshold": 0.5,
        "audit_rate": 0.0,
        "alert_oncall_emails": "oncall@example.org, second@example.org",
        "alert_escalation_emails": "head@example.org",
    }
    return ProjectFactory(**{**defaults, **fields})


def _predict(project, probabilities: dict[str, float]):
    label = max(probabilities, key=probabilities.get)
    return PredictionFactory(
        item__project=project,
        label=label,
        confidence=probabilities[label],
        probabilities=probabilities,
    )


def test_a_topk_alert_fires_when_the_top_label_is_not_the_priority_one(sent):
    project = _project(alert_top_k=2, alert_min_probability=0.25)
    prediction = _predict(project, {"normal": 0.62, "stroke": 0.30, "bleed": 0.08})

    task = prediction_service.prediction_route(prediction=prediction)

    alert = Alert.objects.get(item=prediction.item)
    assert (alert.label, alert.reason, alert.probability) == ("stroke", "topk", 0.30)
    # The model would have decided "normal" alone; the suspicion sends it to a person first.
    assert task is not None and task.reason == ReviewReason.PRIORITY
    assert (jobs.ALERT_NOTIFY, (alert.pk, "alert.raised")) in sent


def test_no_alert_below_the_probability_or_outside_the_top_k(sent):
    below = _project(alert_top_k=2, alert_min_probability=0.35)
    outside = _project(alert_top_k=2, alert_min_probability=0.2)
    # stroke at 0.30 < 0.35; stroke third of three with k = 2: the model decides both alone.
    for project, probabilities in (
        (below, {"normal": 0.62, "stroke": 0.30, "bleed": 0.08}),
        (outside, {"normal": 0.50, "bleed": 0.26, "stroke": 0.24}),
    ):
        assert (
            prediction_service.prediction_route(prediction=_predict(project, probabilities)) is None
        )
    assert not Alert.objects.exists() and not sent


def test_top1_alert_is_raised_once_and_redelivery_pushes_nothing_twice(sent):
    project = _project()
    prediction = _predict(project, {"stroke": 0.9, "normal": 0.1})
    prediction_service.prediction_route(prediction=prediction)
    prediction_service.prediction_route(prediction=prediction)  # a redelivered message
    alert = Alert.objects.get()
    assert (alert.reason, alert.label, alert.probability) == ("top1", "stroke", 0.9)
    assert [name for name, _ in sent] == [jobs.ALERT_NOTIFY]


def test_notify_sends_signed_webhook_and_email_to_the_oncall_list(sent):
    from reviewapp.api.auth import api_client_create

    project = _project()
    client, _ = api_client_create(name="pager", projects=[project])
    hook = Webhook.objects.create(client=client, url="https://example.org/h", secret="whsec_x")
    prediction = _predict(project, {"stroke": 0.9, "normal": 0.1})
    alert = alerts.alert_raise_for(prediction=prediction)
    now = timezone.now()

    assert alerts.alert_notify(alert_id=alert.pk, event=AlertEvent.RAISED, now=now)
    assert alerts.alert_notify(alert_id=alert.pk, event=AlertEvent.RAISED)  # redelivered task

    delivery = WebhookDelivery.objects.get()
    assert delivery.webhook == hook and delivery.event_type == "alert.raised"
    assert delivery.payload["type"] == "alert.raised"
    assert delivery.payload["alert"]["label"] == "stroke"
    assert delivery.payload["item"]["key"] == prediction.item.key
    assert [name for name, _ in sent].count(jobs.DELIVER_WEBHOOK) == 1
    assert mail.outbox[0].to == ["oncall@example.org", "second@example.org"]
    assert "stroke" in mail.outbox[0].subject
    alert.refresh_from_db()
    assert alert.pushed_at == now  # the first push stamps it; the redelivery does not move it
    # The delivery's body is signed like every other event.
    body = webhooks.json.dumps(delivery.payload, sort_keys=True).encode()
    header = webhooks.signature_header(secret=hook.secret, body=body, timestamp=1_700_000_000)
    assert webhooks.signature_verify(
        secret=hook.secret, header=header, body=body, now=1_700_000_000
    )


def test_an_unclaimed_alert_escalates_after_its_deadline_with_an_injected_clock(sent):
    project = _project(alert_deadline_minutes=10)
    alert = alerts.alert_raise_for(prediction=_predict(project, {"stroke": 0.9, "normal": 0.1}))
    raised = alert.raised_at
    sent.clear()

    assert alerts.alerts_escalate_due(now=raised + timedelta(minutes=9, seconds=59)) == []
    assert alerts.alerts_escalate_due(now=raised + timedelta(minutes=10)) == [alert.pk]
    assert alerts.alerts_escalate_due(now=raised + timedelta(minutes=11)) == []  # once only

    alert.refresh_from_db()
    assert alert.escalated_at == raised + timedelta(minutes=10)
    assert (jobs.ALERT_NOTIFY, (alert.pk, "alert.escalated")) in sent
    alerts.alert_notify(alert_id=alert.pk, event=AlertEvent.ESCALATED)
    message = mail.outbox[-1]
    assert "ESCALATED" in message.subject
    assert set(message.to) == {"oncall@example.org", "second@example.org", "head@example.org"}


def test_an_acknowledged_or_decided_alert_does_not_escalate(sent):
    project = _project(alert_deadline_minutes=10)
    acked = alerts.alert_raise_for(prediction=_predict(project, {"stroke": 0.9, "normal": 0.1}))
    decided = alerts.alert_raise_for(prediction=_predict(project, {"stroke": 0.8, "normal": 0.2}))
    assert alerts.alert_acknowledge(alert=acked, user=ReviewerFactory())
    assert not alerts.alert_acknowledge(alert=acked, user=ReviewerFactory())  # taken already
    alerts.alert_decided(item_id=decided.item_id, now=timezone.now())
    later = timezone.now() + timedelta(hours=1)
    assert alerts.alerts_escalate_due(now=later) == []


def test_the_desk_shows_the_alert_first_and_a_reviewer_acknowledges_it(client, sent):
    project = _project(stage=Stage.SHADOW)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    ReviewTaskFactory(prediction=_predict(project, {"normal": 0.9, "stroke": 0.1}))
    prediction = _predict(project, {"stroke": 0.7, "normal": 0.3})
    task = prediction_service.prediction_route(prediction=prediction)
    alert = Alert.objects.get()
    client.force_login(reviewer)

    page = client.get(reverse("desk", args=[project.slug]))

    assert page.context["task"] == task  # the alerted item's priority task comes first
    assert b"Open alerts" in page.content and b"10 min left" in page.content
    url = reverse("alert-acknowledge", args=[project.slug, alert.pk])
    assert client.post(url).status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == reviewer and alert.acknowledged_at is not None
    assert b"Open alerts" not in client.get(reverse("desk", args=[project.slug])).content


def test_a_reviewer_of_another_project_cannot_acknowledge(client, sent):
    project = _project()
    alert = alerts.alert_raise_for(prediction=_predict(project, {"stroke": 0.9, "normal": 0.1}))
    outsider = ReviewerFactory()
    _project(slug="other").reviewers.add(outsider)
    client.force_login(outsider)
    url = reverse("alert-acknowledge", args=[project.slug, alert.pk])
    assert client.post(url).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_a_reviewers_decision_stamps_the_alert_decided(sent):
    project = _project(stage=Stage.SUPERVISED)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    prediction_service.prediction_route(
        prediction=_predict(project, {"stroke": 0.9, "normal": 0.1})
    )
    task = claim.task_claim_next(project=project, reviewer=reviewer)
    queues.decision_submit(task=task, reviewer=reviewer, verdict=Verdict.CONFIRM, label="stroke")
    task.refresh_from_db()
    alert = Alert.objects.get()
    assert task.status == TaskStatus.DONE
    assert alert.decided_at == task.closed_at


def test_policy_form_sets_alert_fields_and_refuses_bad_addresses():
    project = _project()
    admin = RolloutAdminFactory()
    data = {**PolicyForm.for_project(project).initial, "reason": "pager duty"}
    data.update({"ood_threshold": "", "auto_promote_after_hours": ""})
    bad = PolicyForm({**data, "alert_oncall_emails": "oncall@example.org, not-an-address"})
    assert not bad.is_valid() and "alert_oncall_emails" in bad.errors
    good = PolicyForm(
        {**data, "alert_top_k": 3, "alert_min_probability": 0.2, "alert_deadline_minutes": 5}
    )
    assert good.is_valid(), good.errors
    rollout.policy_set(project=project, actor=admin, reason="pager duty", **good.changes())
    project.refresh_from_db()
    assert (project.alert_top_k, project.alert_min_probability) == (3, 0.2)
    assert project.alert_deadline_minutes == 5
    with pytest.raises(rollout.RolloutRefused):
        rollout.policy_set(project=project, actor=admin, reason="x", alert_oncall_emails="nope")


def test_beat_setup_schedules_the_escalation_job_and_the_task_escalates(sent):
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    from reviewapp import tasks

    call_command("beat_setup", "--alerts-seconds", "20")
    entry = PeriodicTask.objects.get(task=jobs.ALERTS_ESCALATE)
    assert entry.enabled and entry.interval.every == 20
    project = _project(alert_deadline_minutes=10)
    alert = alerts.alert_raise_for(prediction=_predict(project, {"stroke": 0.9, "normal": 0.1}))
    Alert.objects.filter(pk=alert.pk).update(raised_at=timezone.now() - timedelta(minutes=11))
    assert tasks.alerts_escalate.run() == [alert.pk]
