"""COPY inserts (reviewapp.fastpaths.bulk_copy) write what bulk_create writes (issue 17).

On PostgreSQL the rows go through COPY with keys from the identity sequence; elsewhere through
bulk_create. Either way the objects come back with their keys, JSON survives the round trip,
and a duplicate raises IntegrityError without writing any row of the batch.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from reviewapp.fastpaths import bulk_copy
from reviewapp.models import DriftSample, Outcome, Prediction
from reviewapp.rollout import versions
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def _predictions(champion_project, count: int) -> list[Prediction]:
    version = versions.champion_of(champion_project)
    return [
        Prediction(
            item=ItemFactory(project=champion_project),
            model_version=version,
            label=str(n % 10),
            confidence=0.5 + n / 100,
            probabilities={"0": 0.25, str(n % 10): 0.75, "nested": [1.5, {"x": None}]},
            ood_score=0.1 * n,
            is_ood=n % 2 == 0,
            latency_ms=3.25,
            frames=[{"time": 0.5, "label": "7"}] if n == 0 else [],
        )
        for n in range(count)
    ]


def _row(prediction: Prediction) -> tuple:
    return (
        prediction.item_id,
        prediction.model_version_id,
        prediction.label,
        prediction.confidence,
        prediction.probabilities,
        prediction.ood_score,
        prediction.is_ood,
        prediction.latency_ms,
        prediction.frames,
        prediction.created_at,
    )


def test_copy_insert_stores_the_rows_bulk_create_would(champion_project):
    built = _predictions(champion_project, 20)
    stored = bulk_copy.copy_insert(built)
    assert len(stored) == 20 and all(p.pk for p in stored)
    assert len({p.pk for p in stored}) == 20
    for prediction in stored:
        assert _row(Prediction.objects.get(pk=prediction.pk)) == _row(prediction)
    # Keys come from the table's own sequence: an ORM insert afterwards does not collide.
    later = _predictions(champion_project, 1)[0]
    later.save()
    assert later.pk not in {p.pk for p in stored}
    # Objects are saved instances: related rows can point at them at once.
    samples = bulk_copy.copy_insert(
        [DriftSample(prediction=p, embedding=[0.5, -1.25], image_stats={"b": 0.1}) for p in stored]
    )
    assert DriftSample.objects.filter(prediction__in=stored).count() == 20
    assert DriftSample.objects.get(pk=samples[3].pk).embedding == [0.5, -1.25]


def test_a_duplicate_in_a_copied_batch_writes_nothing_and_raises_integrity_error(
    champion_project,
):
    first = bulk_copy.copy_insert(_predictions(champion_project, 10))
    outcomes = [Outcome(item_id=p.item_id, label="1", decided_by="model") for p in first]
    outcomes.append(Outcome(item_id=first[0].item_id, label="2", decided_by="model"))
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            bulk_copy.copy_insert(outcomes)
    assert Outcome.objects.count() == 0
    assert connection.vendor in {"postgresql", "sqlite"}
