"""Waiting for a decision: polling the item until a reviewer decides, and the synchronous path."""

from __future__ import annotations

import pytest
from handoff_client import DecisionTimeout

from reviewapp.models import ReviewTask, TaskStatus
from reviewapp.review import services as desk
from tests.factories import PredictionFactory, ReviewerFactory, ReviewTaskFactory, png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_waits_until_a_reviewer_decides(handoff):
    item = handoff.client.submit(handoff.project, png_bytes(1)).item
    assert item.status == "received"
    reviewer = ReviewerFactory()
    seen = []

    def the_desk_works_while_the_client_sleeps(seconds: float) -> None:
        """Each poll interval, the server moves on: queued for review, then decided."""
        seen.append(handoff.client.item(item.id).status)
        if len(seen) == 1:
            prediction = PredictionFactory(item_id=item.id, label="cat", confidence=0.6)
            ReviewTaskFactory(prediction=prediction)
        elif len(seen) == 2:
            task = ReviewTask.objects.get(item_id=item.id)
            desk.decision_submit(task=task, reviewer=reviewer, verdict="correct", label="dog")

    handoff.client._transport.sleep = the_desk_works_while_the_client_sleeps
    decided = handoff.client.wait_for_decision(item, timeout=30, interval=0.01)

    assert seen == ["received", "waiting_for_review"]
    assert decided.status == "decided" and decided.id == item.id
    assert (decided.outcome.label, decided.outcome.decided_by) == ("dog", "human")


def test_gives_up_waiting_after_the_timeout(handoff):
    item = handoff.client.submit(handoff.project, png_bytes(2)).item
    with pytest.raises(DecisionTimeout) as caught:
        handoff.client.wait_for_decision(item.id, timeout=0.3, interval=0.05)
    assert "still received" in str(caught.value) and isinstance(caught.value, TimeoutError)


def test_submit_with_wait_predicts_and_routes_before_answering(handoff, champion_project):
    handoff.api_client.projects.add(champion_project)
    result = handoff.client.submit(champion_project.slug, png_bytes(3), wait=25)
    assert result.created and result.item.status == "waiting_for_review"  # shadow: all reviewed
    task = ReviewTask.objects.get(item_id=result.item.id, status=TaskStatus.OPEN)
    desk.decision_submit(task=task, reviewer=ReviewerFactory(), verdict="correct", label="7")
    decided = handoff.client.wait_for_decision(result.item, timeout=10)
    assert decided.outcome.label == "7" and decided.outcome.decided_by == "human"
