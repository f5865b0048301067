"""The `wait` batcher: a lone request is a batch of one at once; requests that arrive while a
forward runs go together into the next one; every request gets its own item's answer."""

from __future__ import annotations

import threading

import torch

from reviewapp import jobs
from reviewapp.intake import batcher, batching
from reviewapp.models import Item


def _item(pk: int) -> Item:
    return Item(pk=pk)


def _fake(sizes: list[int], gate: threading.Event):
    def predict(items: list[Item]) -> batching.BatchReport:
        item_ids = [item.pk for item in items]
        sizes.append(len(item_ids))
        gate.wait(timeout=30)
        return batching.BatchReport(
            predicted=[i for i in item_ids if i % 2 == 0], waiting=[i for i in item_ids if i % 2]
        )

    return predict


def test_requests_that_queue_behind_a_forward_share_the_next_batch():
    sizes, gate = [], threading.Event()
    subject = batcher.Batcher(max_batch=4, max_wait=0.05, predict=_fake(sizes, gate))
    first = subject.submit(_item(100))
    while not sizes:  # the lone request went out at once, as a batch of one
        threading.Event().wait(0.01)
    rest = [subject.submit(_item(i)) for i in range(1, 7)]
    gate.set()
    answers = [future.result(timeout=30).status for future in [first, *rest]]
    assert sizes[0] == 1 and sizes[1] == 4 and sum(sizes) == 7
    assert subject.batches == len(sizes) and subject.items == 7
    assert answers == ["predicted"] + ["no-champion", "predicted"] * 3


def test_a_failed_forward_fails_each_waiting_request():
    def broken(item_ids):
        raise RuntimeError("model gone")

    subject = batcher.Batcher(max_batch=4, max_wait=0.0, predict=broken)
    future = subject.submit(_item(1))
    assert isinstance(future.exception(timeout=30), RuntimeError)
    assert subject.batches == 0


def test_the_batcher_runs_its_forwards_on_its_own_torch_thread_count():
    """The web shares the cores with busy workers: its forwards take HANDOFF_API_PREDICT_THREADS
    threads (1), not torch's default of every core."""
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    seen = []

    def predict(items: list[Item]) -> batching.BatchReport:
        seen.append(torch.get_num_threads())
        return batching.BatchReport(predicted=[item.pk for item in items])

    subject = batcher.Batcher(max_batch=4, max_wait=0.0, predict=predict, threads=wanted)
    try:
        assert subject.submit(_item(2)).result(timeout=30).status == "predicted"
    finally:
        torch.set_num_threads(before)  # threads started later in this process: torch's default
    assert seen == [wanted]
    assert torch.get_num_threads() == before


def test_a_request_cancelled_before_its_batch_is_left_out_of_it():
    """A request whose budget ran out while it queued gives its item back: no forward for it."""
    sizes, gate = [], threading.Event()
    subject = batcher.Batcher(max_batch=4, max_wait=0.0, predict=_fake(sizes, gate))
    first = subject.submit(_item(2))
    while not sizes:
        threading.Event().wait(0.01)
    dropped, kept = subject.submit(_item(4)), subject.submit(_item(6))
    assert dropped.cancel()
    gate.set()
    assert kept.result(timeout=30).status == "predicted"
    assert first.result(timeout=30).status == "predicted"
    assert sizes == [1, 1] and subject.items == 2


def test_a_batchs_jobs_go_to_the_broker_after_its_answers(monkeypatch):
    """A drift check or webhook delivery the batch's commit asks for is sent once every request
    has its answer: a process's first broker send opens the connection (~130 ms), which no
    waiting request should pay. A send that fails is logged; the others still go."""
    futures, sent = [], []

    def send_task(name, args=(), **options):
        sent.append((name, args, all(future.done() for future in futures)))
        if args == (13,):
            raise ConnectionError("broker gone")

    monkeypatch.setattr(jobs.current_app, "send_task", send_task)

    def predict(items: list[Item]) -> batching.BatchReport:
        before = len(sent)
        for item in items:
            jobs.job_send(jobs.DRIFT_CHECK, item.pk)
        assert len(sent) == before  # held, not sent, while the batch runs
        return batching.BatchReport(predicted=[item.pk for item in items])

    subject = batcher.Batcher(max_batch=4, max_wait=0.0, predict=predict)
    futures.append(subject.submit(_item(13)))
    assert futures[0].result(timeout=30).status == "predicted"
    futures.append(subject.submit(_item(14)))
    assert futures[1].result(timeout=30).status == "predicted"
    threading.Event().wait(0.2)  # the release follows the answer on the batcher's thread
    assert sent == [(jobs.DRIFT_CHECK, (13,), True), (jobs.DRIFT_CHECK, (14,), True)]
    jobs.job_send(jobs.DRIFT_CHECK, 15)  # on any other thread, sent at once as before
    assert sent[-1] == (jobs.DRIFT_CHECK, (15,), True)
