"""Alerts through a real worker: a priority item sent to the API is pushed, then escalates."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from reviewapp.models import Alert, Webhook
from reviewapp.review import alerts, webhooks
from tests.api.conftest import Api
from tests.api.test_webhooks import Receiver
from tests.conftest import wait_for


@pytest.fixture
def mail_dir(tmp_path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def mailing_worker(monkeypatch, request, mail_dir):
    """A real worker that writes e-mail to files (the locmem outbox is per process)."""
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(mail_dir))
    monkeypatch.setenv("HANDOFF_WEBHOOK_TIMEOUT_SECONDS", "5")
    return request.getfixturevalue("celery_worker")


def _events(receiver: Receiver, event: str) -> list:
    return [r for r in receiver.requests if json.loads(r[1])["type"] == event]


def _mails(mail_dir: Path) -> str:
    return (
        "".join(path.read_text() for path in sorted(mail_dir.glob("*")))
        if mail_dir.exists()
        else ""
    )


@pytest.mark.django_db(transaction=True)
def test_priority_item_from_the_api_is_pushed_signed_and_mailed_then_escalates(
    champion_project, digit_records, mail_dir, mailing_worker
):
    project = champion_project
    # Every label is a priority label: whatever the tiny model predicts first raises a top1 alert.
    project.priority_labels = list(project.labels)
    project.alert_oncall_emails = "oncall@example.org"
    project.alert_escalation_emails = "head-of-unit@example.org"
    project.alert_deadline_minutes = 10
    project.save()
    api = Api(project=project)
    receiver = Receiver([200])
    try:
        hook = Webhook.objects.create(
            client=api.client_row, url=receiver.url, secret=webhooks.webhook_secret_generate()
        )
        response = api.submit(Path(digit_records[0].path).read_bytes(), key="scan-0001")
        assert response.status_code in (201, 202), response.content

        wait_for(lambda: _events(receiver, "alert.raised"), timeout=90, message="no alert.raised")
        headers, raw, received_at = _events(receiver, "alert.raised")[0]
        assert webhooks.signature_verify(
            secret=hook.secret, header=headers["Handoff-Signature"], body=raw, now=received_at
        )
        payload = json.loads(raw)
        alert = Alert.objects.get(item__key="scan-0001")
        assert payload["item"]["key"] == "scan-0001" and payload["alert"]["id"] == alert.pk
        assert payload["alert"]["reason"] == "top1" and payload["alert"]["label"] == alert.label
        wait_for(lambda: "oncall@example.org" in _mails(mail_dir), message="no alert e-mail")
        assert f"Priority label '{alert.label}'" in _mails(mail_dir)
        alert = wait_for(
            lambda: Alert.objects.filter(pk=alert.pk, pushed_at__isnull=False).first(),
            message="alert never stamped pushed",
        )
        assert alert.pushed_at >= alert.item.created_at
        assert alert.item.tasks.get().reason == "priority"

        # Nobody takes it: ten minutes later (an injected clock, no sleep) beat escalates it.
        late = alert.raised_at + timedelta(minutes=10, seconds=1)
        assert alerts.alerts_escalate_due(now=late) == [alert.pk]
        wait_for(lambda: _events(receiver, "alert.escalated"), message="no alert.escalated")
        wait_for(lambda: "head-of-unit@example.org" in _mails(mail_dir), message="no escalation")
        assert "ESCALATED" in _mails(mail_dir)
    finally:
        receiver.close()
