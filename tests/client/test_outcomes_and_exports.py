"""The outcomes feed across cursor pages, and exports to a DataFrame and to a label/image folder."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reviewapp.intake import services
from reviewapp.models import DecidedBy, Item
from reviewapp.review.outcomes import outcome_create
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _decided(project, seed: int, label: str = "cat", by: str = DecidedBy.HUMAN) -> Item:
    item, _ = services.item_ingest(
        project=project, data=png_bytes(seed), client_key=f"k-{seed}", enqueue_prediction=False
    )
    outcome_create(item_id=item.pk, label=label, decided_by=by, is_out_of_domain=not label)
    return item


def test_iterates_outcomes_across_cursor_pages_and_resumes(handoff):
    labels = ["cat", "dog", "NA", "cat", "dog", "cat", "NA"]
    for seed, label in enumerate(labels):
        _decided(handoff.project, 100 + seed, label=label)

    feed = handoff.client.outcomes(handoff.project, page_size=3)
    rows = list(feed)

    assert [(row.key, row.label) for row in rows] == [
        (f"k-{100 + seed}", label) for seed, label in enumerate(labels)
    ]
    assert feed.pages == 4  # 3 + 3 + 1, then an empty page: caught up
    assert [row.id for row in rows] == sorted(row.id for row in rows)

    _decided(handoff.project, 200, label="dog", by=DecidedBy.MODEL)
    later = list(handoff.client.outcomes(handoff.project, page_size=3, cursor=feed.cursor))
    assert [(row.key, row.decided_by) for row in later] == [("k-200", "model")]

    only_na = handoff.client.outcomes(handoff.project, label="NA")
    assert [row.key for row in only_na] == ["k-102", "k-106"]


def test_following_the_feed_polls_until_told_to_stop(handoff):
    _decided(handoff.project, 300)
    polls = []

    def new_outcome_arrives(seconds: float) -> None:
        polls.append(seconds)
        _decided(handoff.project, 301 + len(polls), label="dog")

    handoff.client._transport.sleep = new_outcome_arrives
    feed = handoff.client.outcomes(follow=True, poll_interval=2.5, stop=lambda: len(polls) >= 2)
    assert [row.key for row in feed] == ["k-300", "k-302", "k-303"]
    assert polls == [2.5, 2.5]


@pytest.mark.parametrize("format", ["csv", "json"])
def test_exports_the_labeled_items_to_a_dataframe(handoff, format):
    items = {
        label: _decided(handoff.project, 400 + seed, label=label)
        for seed, label in enumerate(["cat", "dog", "NA"])
    }
    _decided(handoff.project, 410, label="")  # out of domain: not in the export

    frame = handoff.client.export_dataframe(handoff.project, format=format)

    assert list(frame["label"]) == ["cat", "dog", "NA"]  # "NA" stays a label
    assert list(frame["item_id"]) == [item.pk for item in items.values()]
    assert list(frame["sha256"]) == [item.sha256 for item in items.values()]
    assert (frame["width"] == 16).all() and set(frame["decided_by"]) == {"human"}
    assert isinstance(frame["decided_at"].dtype, pd.DatetimeTZDtype)
    if format == "json":
        assert frame.attrs == {"project": handoff.project.slug, "labels": ["cat", "dog", "NA"]}


def test_an_empty_project_exports_an_empty_dataframe(handoff):
    assert handoff.client.export_dataframe(handoff.project).empty
    assert handoff.client.export_dataframe(handoff.project, format="json").empty


def test_exports_to_a_label_image_folder(handoff, tmp_path):
    seeds = {500: "cat", 501: "dog", 502: "cat"}
    items = {seed: _decided(handoff.project, seed, label=label) for seed, label in seeds.items()}

    export = handoff.client.export_folder(handoff.project, tmp_path / "out")

    assert export.counts == {"cat": 2, "dog": 1} and export.images == 3
    for seed, label in seeds.items():
        image = tmp_path / "out" / label / f"{items[seed].sha256}.png"
        assert image.read_bytes() == png_bytes(seed)
    assert json.loads((tmp_path / "out" / "labels.json").read_text()) == {
        "labels": ["cat", "dog", "NA"]
    }
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert sorted(manifest["key"]) == ["k-500", "k-501", "k-502"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cat",
        "dog",
        "labels.json",
        "manifest.csv",
    ]  # the streamed zip was removed
