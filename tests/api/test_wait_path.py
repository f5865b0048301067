"""The `wait` path stays short (issue 17): the item is stored claimed by its request, so no worker
predicts it; the batcher predicts it without claiming or reading it back; the answer comes from
the rows just written. Counted in SQL statements, in every thread, not timed."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from django.db.backends.utils import CursorWrapper

from reviewapp.api import submission, timing
from reviewapp.intake import claims
from reviewapp.models import Item
from tests.api.conftest import Api

# A keyed wait request for a new item, from upload to answer, once the model is loaded: the
# token, the project, the key and content look-ups, the INSERT, the champion, the prediction and
# its drift sample, the route and the outbox settled (SQLite's BEGINs not counted). It took 26
# before this path stopped claiming the item, reading it back and re-reading the answer.
MAX_WAIT_STATEMENTS = 11
LEASE_TAKEN = re.compile(r'prediction_claimed_until"? = %')


@pytest.fixture
def statements(monkeypatch) -> list[str]:
    """Every SQL statement any thread runs from now on (the batcher has its own connection)."""
    seen: list[str] = []
    real = CursorWrapper._execute_with_wrappers

    def recording(self, sql, params, many, executor):
        if not sql.startswith("BEGIN"):  # SQLite's; PostgreSQL's are not sent as statements
            seen.append(f"{threading.current_thread().name}: {sql}")
        return real(self, sql, params, many, executor)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", recording)
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_wait_request_runs_a_bounded_number_of_statements(
    champion_project, digit_records, statements
):
    api = Api(project=champion_project)
    warm = api.submit(Path(digit_records[1].path).read_bytes(), wait="20")  # loads the model
    assert warm.status_code == 201, warm.content
    statements.clear()
    response = api.submit(Path(digit_records[2].path).read_bytes(), key="counted", wait="20")
    assert response.status_code == 201, response.content
    counted = list(statements)
    assert response.json()["status"] in {"decided", "waiting_for_review"}
    item = Item.objects.get(client_key="counted")
    assert item.prediction_due_at is None and item.predictions.count() == 1
    assert not [s for s in counted if LEASE_TAKEN.search(s)], "the request claimed its own item"
    assert len(counted) <= MAX_WAIT_STATEMENTS, "\n".join(counted)


@pytest.mark.django_db(transaction=True)
def test_a_wait_item_is_never_the_workers_to_claim(champion_project, digit_records):
    """Stored for a wait, the item is its request's: neither a worker's batch claim nor a named
    claim (a re-sent task) takes it while the request holds it."""
    data = Path(digit_records[3].path).read_bytes()
    entry = submission.Submission(data=data, filename="w.png")
    checked = submission.submission_check(project=champion_project, submission=entry)
    item, created = submission.item_submit(
        client=Api(project=champion_project).client_row,
        project=champion_project,
        submission=entry,
        checked=checked,
        wait=5,
    )
    assert created and item.prediction_due_at is not None
    assert claims.items_claim_due(limit=10) == []
    assert claims.items_claim_named(item_ids=[item.pk]) == []
    claims.item_release(item_id=item.pk)  # what a request does when its batcher will not run
    assert claims.items_claim_named(item_ids=[item.pk]) == [item.pk]


@pytest.mark.django_db(transaction=True)
def test_a_wait_answer_says_where_its_time_went(champion_project, digit_records):
    """Server-Timing names each phase of the request; the batch's own phases are inside the
    view's time, which the client's whole time contains."""
    api = Api(project=champion_project)
    assert api.submit(Path(digit_records[1].path).read_bytes(), wait="20").status_code == 201
    started = time.perf_counter()
    response = api.submit(Path(digit_records[4].path).read_bytes(), wait="20")
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 201, response.content
    phases = timing.parse(response["Server-Timing"])
    assert list(phases) == ["parse", "check", "store", "queue", "predict", "write", "answer", "app"]
    assert all(value >= 0 for value in phases.values()), phases
    inside = sum(value for name, value in phases.items() if name != "app")
    assert inside <= phases["app"] + 0.5 <= elapsed_ms + 0.5, (phases, elapsed_ms)
    queued = api.submit(Path(digit_records[5].path).read_bytes())  # no wait: no batch phases
    assert queued.status_code == 202
    assert list(timing.parse(queued["Server-Timing"])) == [
        "parse",
        "check",
        "store",
        "answer",
        "app",
    ]


def test_server_timing_is_read_back_as_written():
    assert timing.parse('a;dur=1.5, b;desc="x";dur=2, c, d;desc=y') == {"a": 1.5, "b": 2.0}
