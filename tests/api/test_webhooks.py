"""Webhooks: signed POSTs on each final outcome, retried by a real Celery worker, dead letters."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reviewapp.intake import services
from reviewapp.models import DecidedBy, DeliveryState, Outcome, Stage, Webhook, WebhookDelivery
from reviewapp.review import outcomes, webhooks
from tests.api.conftest import Api
from tests.conftest import wait_for
from tests.factories import png_bytes


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers with the next status from a script."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.requests = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body, time.time()))
                code = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver_factory():
    made = []

    def make(statuses):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def fast_retry_worker(monkeypatch, request):
    """A real worker whose webhook task retries twice with a 1 s backoff base."""
    monkeypatch.setenv("HANDOFF_WEBHOOK_MAX_RETRIES", "2")
    monkeypatch.setenv("HANDOFF_WEBHOOK_BACKOFF_SECONDS", "1")
    monkeypatch.setenv("HANDOFF_WEBHOOK_TIMEOUT_SECONDS", "5")
    return request.getfixturevalue("celery_worker")


def _webhook(api: Api, url: str) -> Webhook:
    return Webhook.objects.create(
        client=api.client_row, url=url, secret=webhooks.webhook_secret_generate()
    )


def test_signature_verifies_and_refuses_tampering_and_replay():
    body, secret = b'{"a": 1}', "whsec_test"
    header = webhooks.signature_header(secret=secret, body=body, timestamp=1_700_000_000)
    assert webhooks.signature_verify(secret=secret, header=header, body=body, now=1_700_000_010)
    assert not webhooks.signature_verify(
        secret=secret, header=header, body=b'{"a": 2}', now=1_700_000_010
    )
    assert not webhooks.signature_verify(
        secret="other", header=header, body=body, now=1_700_000_010
    )
    assert not webhooks.signature_verify(  # an old capture replayed later
        secret=secret, header=header, body=body, now=1_700_000_000 + 3600
    )
    assert not webhooks.signature_verify(secret=secret, header="garbage", body=body)


@pytest.mark.django_db(transaction=True)
def test_model_decision_through_the_api_is_posted_signed(
    champion_project, digit_records, receiver_factory, fast_retry_worker
):
    project = champion_project
    project.stage, project.traffic_share = Stage.AUTOMATED, 1.0
    project.confidence_threshold, project.audit_rate, project.ood_threshold = 0.0, 0.0, None
    project.save()
    api = Api(project=project)
    receiver = receiver_factory([200])
    hook = _webhook(api, receiver.url)
    # The tiny model calls some digits out of domain (a human's job): take the first it decides.
    for index, record in enumerate(digit_records[:20]):
        key = f"trap-1/{index:04d}"
        response = api.submit(Path(record.path).read_bytes(), key=key, wait="20")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] in {"decided", "waiting_for_review"}, body
        if body["status"] == "decided":
            break
    assert body["outcome"]["decided_by"] == "model"
    wait_for(lambda: receiver.requests, timeout=30, message="webhook never arrived")
    headers, raw, received_at = receiver.requests[0]
    assert webhooks.signature_verify(
        secret=hook.secret, header=headers["Handoff-Signature"], body=raw, now=received_at
    )
    payload = json.loads(raw)
    assert payload["type"] == "outcome.final" and payload["item"]["key"] == key
    assert payload["outcome"]["decided_by"] == "model"
    assert headers["Handoff-Event-Id"] == payload["event_id"]
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).first(),
        message="delivery not marked delivered",
    )
    assert delivery.attempts == 1
    log = api.get(f"/api/v1/webhooks/{hook.pk}/deliveries/").json()
    assert log[0]["state"] == "delivered" and log[0]["last_status_code"] == 200


def _human_outcome(api: Api, seed: int) -> Outcome:
    item, _ = services.item_ingest(
        project=api.project, data=png_bytes(seed), enqueue_prediction=False
    )
    return outcomes.outcome_create(item_id=item.pk, label="cat", decided_by=DecidedBy.HUMAN)


@pytest.mark.django_db(transaction=True)
def test_failures_are_retried_with_backoff_then_delivered(receiver_factory, fast_retry_worker):
    from tests.factories import ProjectFactory

    api = Api(project=ProjectFactory(labels=["cat", "dog"]))
    receiver = receiver_factory([500, 200])
    _webhook(api, receiver.url)
    _human_outcome(api, 2)
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).first(),
        timeout=60,
        message="never delivered after a retry",
    )
    assert delivery.attempts == 2 and len(receiver.requests) == 2
    assert [entry["status"] for entry in delivery.log] == [500, 200]
    # Each attempt is signed afresh, with the same event id for the receiver to deduplicate.
    ids = {headers["Handoff-Event-Id"] for headers, _, _ in receiver.requests}
    assert ids == {str(delivery.event_id)}


@pytest.mark.django_db(transaction=True)
def test_after_the_last_retry_the_delivery_is_a_dead_letter(receiver_factory, fast_retry_worker):
    from tests.factories import ProjectFactory

    api = Api(project=ProjectFactory(labels=["cat", "dog"]))
    receiver = receiver_factory([503])
    hook = _webhook(api, receiver.url)
    _human_outcome(api, 3)
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(state=DeliveryState.DEAD).first(),
        timeout=90,
        message="never became a dead letter",
    )
    assert delivery.attempts == 3 and len(receiver.requests) == 3  # 1 try + 2 retries
    gaps = [b[2] - a[2] for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert all(gap > 0 for gap in gaps)
    assert delivery.last_status_code == 503
    log = api.get(f"/api/v1/webhooks/{hook.pk}/deliveries/").json()
    assert log[0]["state"] == "dead"


def test_outcomes_of_projects_outside_the_token_are_not_sent(
    db, django_capture_on_commit_callbacks
):
    from tests.factories import ProjectFactory

    api = Api(project=ProjectFactory(labels=["cat"]))
    _webhook(api, "http://127.0.0.1:9/hook")
    stranger = Api(project=ProjectFactory(labels=["cat"]), name="stranger")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _human_outcome(stranger, 4)
    created = [webhooks.outcome_finalised(outcome_id=Outcome.objects.get().pk)]
    assert callbacks and created == [[]]
    assert WebhookDelivery.objects.count() == 0
