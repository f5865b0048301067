"""Audits are blind like the shadow stage; a priority caption never gives a blind guess away."""

import json
import re

import pytest
from django.urls import reverse

from reviewapp.models import Decision, ReviewReason, Stage
from tests.factories import PredictionFactory, ProjectFactory, ReviewerFactory, ReviewTaskFactory

pytestmark = pytest.mark.django_db
LABELS = ["cat", "dog", "grizzly"]


def _task(project, reason, *, label="dog", confidence=0.8731, priority=30, **extra):
    prediction = PredictionFactory(
        item__project=project,
        model_version__labels=LABELS,
        label=label,
        confidence=confidence,
        probabilities={label: confidence, "cat": 0.1},
    )
    return ReviewTaskFactory(prediction=prediction, reason=reason, priority=priority, **extra)


def _login(client, project):
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    return reviewer


def _desk(client, project):
    html = client.get(reverse("desk", args=[project.slug])).content.decode()
    payload = json.loads(re.search(r'id="desk-task"[^>]*>(.*?)</script>', html, re.S).group(1))
    return html, payload


def test_an_audit_task_hides_the_suggestion_in_the_page_its_json_and_refuses_enter(client):
    project = ProjectFactory(stage=Stage.AUTOMATED, labels=LABELS)
    audit = _task(project, ReviewReason.AUDIT, audit_probability=0.05)
    _login(client, project)
    html, payload = _desk(client, project)
    assert payload["id"] == audit.pk and payload["blind"] is True
    assert payload["suggestion"] is None
    assert "0.87" not in html and 'id="suggestion-label"></b>' in html
    assert 'data-blind="1"' in html and 'id="blind-note" hidden' not in html
    assert 'id="confirm-button" hidden' in html
    fetched = client.get(reverse("desk-next", args=[project.slug]), {"held": ""}).json()["task"]
    assert fetched["suggestion"] is None and "0.8731" not in json.dumps(fetched)
    refused = client.post(
        reverse("desk-decide", args=[project.slug]),
        {"task": audit.pk, "verdict": "confirm", "duration_ms": 300, "held": audit.pk},
    )
    assert refused.status_code == 409  # Enter (confirm) has nothing to accept
    done = client.post(
        reverse("desk-decide", args=[project.slug]),
        {"task": audit.pk, "label": "dog", "duration_ms": 300, "held": audit.pk},
    )
    assert done.json()["ok"] is True
    decision = Decision.objects.get(task=audit)
    assert decision.suggestion_shown is False and decision.suggested_label == "dog"


def test_a_supervised_task_beside_it_still_shows_the_suggestion(client):
    project = ProjectFactory(stage=Stage.SUPERVISED, labels=LABELS)
    task = _task(project, ReviewReason.SUPERVISED)
    _login(client, project)
    html, payload = _desk(client, project)
    assert payload["blind"] is False and payload["suggestion"]["label"] == "dog"
    assert 'data-blind="0"' in html and "0.87" in html
    client.post(
        reverse("desk-decide", args=[project.slug]),
        {"task": task.pk, "verdict": "confirm", "duration_ms": 300, "held": task.pk},
    )
    assert Decision.objects.get(task=task).suggestion_shown is True


def test_the_next_task_json_after_a_decision_is_blind_for_an_audit(client):
    project = ProjectFactory(stage=Stage.PARTIAL, labels=LABELS)
    first = _task(project, ReviewReason.LOW_CONFIDENCE, priority=40)
    _task(project, ReviewReason.AUDIT, audit_probability=0.1)
    _login(client, project)
    _, payload = _desk(client, project)
    assert payload["id"] == first.pk and payload["suggestion"] is not None
    body = client.post(
        reverse("desk-decide", args=[project.slug]),
        {"task": first.pk, "label": "cat", "duration_ms": 300, "held": first.pk},
    ).json()
    assert body["next"]["reason"] == ReviewReason.AUDIT
    assert body["next"]["blind"] is True and body["next"]["suggestion"] is None


def test_in_shadow_a_priority_prediction_is_not_captioned_or_counted_as_priority(client):
    project = ProjectFactory(stage=Stage.SHADOW, labels=LABELS, priority_labels=["grizzly"])
    _task(project, ReviewReason.PRIORITY, label="grizzly", priority=100)
    _task(project, ReviewReason.SHADOW, priority=20)
    _login(client, project)
    html, payload = _desk(client, project)
    assert payload["reason"] == ReviewReason.SHADOW
    assert payload["reason_display"] == "Shadow stage" and payload["suggestion"] is None
    waiting = re.search(r'id="queue-counts">(.*?)</span>\s*<span class="pace"', html, re.S).group(1)
    assert "Priority alert" not in html and "priority" not in waiting and "shadow 2" in waiting
    counts = client.get(reverse("desk-stats", args=[project.slug])).json()["queue"]
    assert counts == {"shadow": 2}


def test_in_supervised_the_priority_caption_comes_with_the_suggestion(client):
    project = ProjectFactory(stage=Stage.SUPERVISED, labels=LABELS, priority_labels=["grizzly"])
    _task(project, ReviewReason.PRIORITY, label="grizzly", priority=100)
    _login(client, project)
    _, payload = _desk(client, project)
    assert payload["reason_display"] == "Priority alert"
    assert payload["suggestion"]["label"] == "grizzly"
