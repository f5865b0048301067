"""The desk's JSON round trip through HTTP: decide + claim next, refusals, and its query cost."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from reviewapp.models import Decision, Outcome, ReviewReason, ReviewTask, Stage, TaskStatus
from reviewapp.review import selectors
from tests.factories import (
    ItemFactory,
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
)

pytestmark = pytest.mark.django_db

# decide.json on PostgreSQL: session, user, project with access (membership + permissions),
# BEGIN, task lock, decision + outcome + task closed + any active webhook (one statement,
# review.outcomes.SETTLE), claim with the next task's payload (one statement), COMMIT. SQLite
# writes the decision, the outcome and the task in three statements, claims in three (held task,
# candidate, conditional update), then reads the payload and, after commit, checks for webhooks.
# A change that adds a query per decision has to raise these bounds on purpose.
DECIDE_MAX_QUERIES = {"postgresql": 8, "sqlite": 14}


def _tasks(project, n, *, label="2", reason=ReviewReason.SHADOW):
    return [
        ReviewTaskFactory(
            prediction=PredictionFactory(
                item__project=project,
                label=label,
                confidence=0.7,
                probabilities={label: 0.7, "5": 0.2, "7": 0.06, "1": 0.04},
            ),
            reason=reason,
        )
        for _ in range(n)
    ]


def _desk(client, project, reviewer):
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    return (
        reverse("desk-next", args=[project.slug]),
        reverse("desk-decide", args=[project.slug]),
    )


def _decide(client, url, task_id, label="2", held=None):
    held = task_id if held is None else held
    return client.post(url, {"task": task_id, "label": label, "duration_ms": 400, "held": held})


def test_decide_records_the_decision_and_returns_a_new_task_with_the_suggestion(client):
    project = ProjectFactory(stage=Stage.SUPERVISED)
    _tasks(project, 3, reason=ReviewReason.SUPERVISED)  # a class that earned its threshold
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    first = client.get(next_url).json()["task"]
    response = _decide(client, decide_url, first["id"], label="5")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert Outcome.objects.get(item_id=first["item_id"]).label == "5"
    assert Decision.objects.get(task_id=first["id"]).verdict == "correct"
    following = body["next"]
    assert following["id"] != first["id"]
    assert ReviewTask.objects.get(pk=following["id"]).status == TaskStatus.CLAIMED
    # The fast payload is the one the desk page renders from the ORM objects.
    task = ReviewTask.objects.select_related("item", "prediction").get(pk=following["id"])
    assert following == selectors.task_payload(task, project=project)
    assert following["suggestion"]["top"] == [["2", 0.7], ["5", 0.2], ["7", 0.06]]


def test_decide_in_the_shadow_stage_returns_the_next_task_blind(client):
    project = ProjectFactory(stage=Stage.SHADOW)
    _tasks(project, 2)
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    first = client.get(next_url).json()["task"]
    following = _decide(client, decide_url, first["id"]).json()["next"]
    assert following["suggestion"] is None and following["id"] != first["id"]


def test_decide_returns_a_task_already_held_before_claiming_another(client):
    project = ProjectFactory()
    _tasks(project, 4)
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    first = client.get(next_url).json()["task"]
    second = client.get(f"{next_url}?held={first['id']}").json()["task"]
    # The desk shows `first` and has prefetched `second`: deciding `first` claims a third.
    third = _decide(client, decide_url, first["id"], held=f"{first['id']},{second['id']}")
    third = third.json()["next"]
    assert third["id"] not in (first["id"], second["id"])
    # A desk that lost track of `second` gets it back instead of a fourth claim.
    again = _decide(client, decide_url, third["id"], held=str(third["id"])).json()["next"]
    assert again["id"] == second["id"]
    assert ReviewTask.objects.filter(status=TaskStatus.CLAIMED).count() == 1


def test_decide_on_a_lost_lease_is_a_409_that_changes_nothing(client):
    project = ProjectFactory()
    _tasks(project, 1)
    alice, bob = ReviewerFactory(), ReviewerFactory()
    next_url, decide_url = _desk(client, project, alice)
    task = client.get(next_url).json()["task"]
    ReviewTask.objects.filter(pk=task["id"]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    project.reviewers.add(bob)
    client.force_login(bob)
    assert client.get(next_url).json()["task"]["id"] == task["id"]
    client.force_login(alice)
    response = _decide(client, decide_url, task["id"])
    assert response.status_code == 409
    assert "another reviewer has it now" in response.json()["error"]
    assert not Decision.objects.exists() and not Outcome.objects.exists()


def test_decide_on_another_projects_task_is_refused(client):
    project, other = ProjectFactory(), ProjectFactory()
    foreign = _tasks(other, 1)[0]
    _, decide_url = _desk(client, project, ReviewerFactory())
    response = _decide(client, decide_url, foreign.pk)
    assert response.status_code == 409
    assert "not in this project's queue" in response.json()["error"]
    assert not Decision.objects.exists()


def test_access_is_checked_on_every_decision(client):
    project = ProjectFactory()
    _tasks(project, 2)
    reviewer = ReviewerFactory()
    next_url, decide_url = _desk(client, project, reviewer)
    task = client.get(next_url).json()["task"]
    project.reviewers.remove(reviewer)
    response = _decide(client, decide_url, task["id"])
    assert response.status_code == 403
    assert not Decision.objects.exists()


@pytest.mark.django_db(transaction=True)  # real BEGIN/COMMIT and after-commit work
def test_decide_json_query_count_stays_bounded(client, django_assert_max_num_queries):
    """Pins the cost of the desk's round trip (see bench/review_load.py)."""
    project = ProjectFactory(stage=Stage.SUPERVISED)
    _tasks(project, 30)
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    task = client.get(next_url).json()["task"]
    for _ in range(25):  # many earlier decisions must not add queries
        task = _decide(client, decide_url, task["id"]).json()["next"]
    with django_assert_max_num_queries(DECIDE_MAX_QUERIES[connection.vendor]):
        response = _decide(client, decide_url, task["id"])
    assert response.status_code == 200 and response.json()["next"] is not None


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"label": "2"}, "task: a task id"),
        ({"task": "12abc", "label": "2"}, "task: a task id"),
        ({"task": "{task}", "verdict": "maybe"}, "'maybe' is not one of"),
        ({"task": "{task}", "label": "2" * 101}, "label: at most 100 characters"),
        ({"task": "{task}", "label": "2", "duration_ms": "-5"}, "duration_ms: a whole number"),
        ({"task": "{task}"}, "Choose a label, confirm, out-of-domain or skip"),
    ],
)
def test_decide_with_bad_input_is_a_409_that_says_what_is_wrong(client, form, says):
    project = ProjectFactory()
    _tasks(project, 2)
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    task = client.get(next_url).json()["task"]
    form = {key: value.format(task=task["id"]) for key, value in form.items()}
    response = client.post(decide_url, form)
    assert response.status_code == 409
    assert response.json()["error"].startswith("The decision was incomplete:")
    assert says in response.json()["error"]
    assert not Decision.objects.exists()
    assert ReviewTask.objects.get(pk=task["id"]).status == TaskStatus.CLAIMED  # still theirs


def test_decide_with_a_label_alone_records_a_correction_with_its_duration(client):
    project = ProjectFactory(stage=Stage.SUPERVISED)
    _tasks(project, 2)
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    task = client.get(next_url).json()["task"]
    response = client.post(decide_url, {"task": task["id"], "label": "5", "duration_ms": " 750 "})
    assert response.status_code == 200
    decision = Decision.objects.get()
    assert (decision.verdict, decision.label, decision.duration_ms) == ("correct", "5", 750)


def test_no_save_signal_is_needed_to_keep_outcomes_and_webhooks_in_step():
    """Outcomes, decisions and tasks have no save receivers: the outcome writer
    (reviewapp.review.outcomes.outcome_create) schedules the webhooks itself."""
    from django.db.models.signals import post_save, pre_save

    from reviewapp.models import Decision as DecisionModel

    def names(signal, model):
        return [f"{r.__module__}.{r.__qualname__}" for r in signal._live_receivers(model)[0]]

    for signal in (pre_save, post_save):
        for model in (Outcome, DecisionModel, ReviewTask):
            assert names(signal, model) == [], (signal, model)


def test_an_admin_relabel_of_a_base_item_schedules_the_outcome_webhook(
    django_capture_on_commit_callbacks,
):
    from reviewapp.api.auth import api_client_create
    from reviewapp.models import Webhook, WebhookDelivery
    from reviewapp.review import quality, webhooks

    project = ProjectFactory()
    item = ItemFactory(project=project, base_label="3")
    api_client, _ = api_client_create(name="crm", projects=[project])
    Webhook.objects.create(
        client=api_client, url="http://127.0.0.1:9/hook", secret=webhooks.webhook_secret_generate()
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = quality.outcome_relabel(item=item, label="8", actor=RolloutAdminFactory())
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome_id == outcome.pk and delivery.payload["outcome"]["label"] == "8"


def test_a_desk_decision_schedules_the_outcome_webhook(client, django_capture_on_commit_callbacks):
    from reviewapp.api.auth import api_client_create
    from reviewapp.models import Webhook, WebhookDelivery
    from reviewapp.review import webhooks

    project = ProjectFactory()
    _tasks(project, 2)
    api_client, _ = api_client_create(name="crm", projects=[project])
    Webhook.objects.create(
        client=api_client, url="http://127.0.0.1:9/hook", secret=webhooks.webhook_secret_generate()
    )
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    task = client.get(next_url).json()["task"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert _decide(client, decide_url, task["id"], label="7").status_code == 200
    outcome = Outcome.objects.get()
    assert (outcome.label, outcome.decided_by, outcome.decision.label) == ("7", "human", "7")
    callbacks[0]()  # the after-commit fan-out the decision scheduled
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome_id == outcome.pk and delivery.payload["outcome"]["label"] == "7"


def test_a_desk_decision_with_no_active_webhook_schedules_no_delivery(
    client, django_capture_on_commit_callbacks
):
    from reviewapp.api.auth import api_client_create
    from reviewapp.models import Webhook, WebhookDelivery
    from reviewapp.review import webhooks

    project = ProjectFactory()
    _tasks(project, 2)
    api_client, _ = api_client_create(name="crm", projects=[project])
    Webhook.objects.create(
        client=api_client,
        url="http://127.0.0.1:9/hook",
        secret=webhooks.webhook_secret_generate(),
        is_active=False,
    )
    next_url, decide_url = _desk(client, project, ReviewerFactory())
    task = client.get(next_url).json()["task"]
    with django_capture_on_commit_callbacks(execute=True):
        assert _decide(client, decide_url, task["id"], label="7").status_code == 200
    assert Outcome.objects.get().label == "7"
    assert not WebhookDelivery.objects.exists()
