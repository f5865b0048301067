"""Operations endpoints: probes, Prometheus metrics and who may read them, JSON logs."""

import json
import logging
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from config.logformat import JsonFormatter
from reviewapp.models import Decision, Prediction
from tests.dashboard_support import dashboard_project_fill
from tests.factories import ReviewerFactory, UserFactory

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-0123456789"


def _sample(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text exposition (labels in any order)."""
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    raise AssertionError(f"{name}{labels} missing from:\n{text[:2000]}")


def test_liveness_answers_anyone(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_checks_database_and_broker(client):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "broker": "ok", "status": "ok"}


def test_readiness_fails_when_the_broker_is_unreachable(client, settings):
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("the filesystem broker has no server to lose")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "fail", "status": "fail"}


def test_metrics_refuse_anonymous_reviewers_and_wrong_tokens(client, settings):
    settings.HANDOFF_METRICS_TOKEN = TOKEN
    url = reverse("metrics")
    response = client.get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    client.force_login(ReviewerFactory())
    assert client.get(url).status_code == 403


def test_metrics_without_a_token_setting_accept_no_token(client, settings):
    settings.HANDOFF_METRICS_TOKEN = ""
    response = client.get(reverse("metrics"), headers={"Authorization": "Bearer "})
    assert response.status_code == 403


def test_metrics_report_the_data(client, settings):
    settings.HANDOFF_METRICS_TOKEN = TOKEN
    filled = dashboard_project_fill(hours=2, per_hour=10, leave_open=3)
    slug = filled.project.slug
    response = client.get(reverse("metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    text = response.content.decode()
    waiting = sum(
        _sample(text, "handoff_review_queue_depth", project=slug, reason=reason)
        for reason in set(re.findall(rf'queue_depth{{project="{slug}",reason="(\w+)"}}', text))
    )
    assert waiting == filled.open_tasks
    correct = Decision.objects.filter(item__project=filled.project, verdict="correct").count()
    assert _sample(text, "handoff_decisions_total", project=slug, verdict="correct") == correct
    assert _sample(text, "handoff_outcomes_total", project=slug, decided_by="model") == filled.auto
    decided = filled.auto + filled.human + filled.human_ood
    assert _sample(text, "handoff_auto_accept_rate", project=slug) == pytest.approx(
        _recent_auto_share(filled)
    )
    predictions = Prediction.objects.filter(item__project=filled.project).count()
    assert decided <= predictions
    assert _sample(text, "handoff_prediction_latency_seconds_count", project=slug) == predictions
    assert (
        _sample(text, "handoff_prediction_latency_seconds_bucket", project=slug, le="0.005")
        == predictions  # the factory's predictions took 1 ms
    )
    assert "process_cpu_seconds_total" in text or "python_info" in text


def _recent_auto_share(filled) -> float:
    from datetime import timedelta

    from django.utils import timezone

    from reviewapp.models import Outcome

    recent = Outcome.objects.filter(
        item__project=filled.project, created_at__gte=timezone.now() - timedelta(hours=1)
    )
    return recent.filter(decided_by="model").count() / recent.count()


def test_staff_may_read_metrics_in_a_browser(client, settings):
    settings.HANDOFF_METRICS_TOKEN = ""
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    response = client.get(reverse("metrics"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert get_user_model().objects.filter(is_staff=True).count() == 1


def test_json_log_lines_carry_event_and_fields():
    record = logging.LogRecord(
        "reviewapp.review.services",
        logging.INFO,
        __file__,
        1,
        "decision.recorded task=%s verdict=%s",
        (12, "confirm"),
        None,
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "decision.recorded"
    assert line["task"] == "12" and line["verdict"] == "confirm"
    assert line["level"] == "INFO" and line["logger"] == "reviewapp.review.services"
    plain = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "Something odd: %s", ("a=b",), None
    )
    assert "event" not in json.loads(JsonFormatter().format(plain))
