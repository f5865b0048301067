"""blind_labels(): only blind shadow reviews and blind audits, each with its inclusion weight."""

import pytest

from reviewapp.models import Prediction, Project, ReviewReason, Stage
from reviewapp.review import services as queues
from reviewapp.rollout.blind import blind_labels
from tests.factories import (
    ModelVersionFactory,
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
)

pytestmark = pytest.mark.django_db


def _decided(project, version, reason, *, said, human, p=None, verdict="correct", conf=0.9):
    prediction = PredictionFactory(
        item__project=project, model_version=version, label=said, confidence=conf
    )
    task = ReviewTaskFactory(prediction=prediction, reason=reason, audit_probability=p)
    queues.decision_submit(task=task, reviewer=ReviewerFactory(), verdict=verdict, label=human)
    return prediction


@pytest.fixture
def project():
    return ProjectFactory(stage=Stage.SHADOW)


def _stage(project, stage):
    Project.objects.filter(pk=project.pk).update(stage=stage)


def test_selected_samples_and_seen_suggestions_are_left_out_and_weights_are_kept(project):
    v1 = ModelVersionFactory(project=project)
    shadow = _decided(project, v1, ReviewReason.SHADOW, said="3", human="3")
    _stage(project, Stage.AUTOMATED)  # the suggestion is shown from now on, except on audits
    audit = _decided(project, v1, ReviewReason.AUDIT, said="3", human="5", p=0.25)
    ood = _decided(project, v1, ReviewReason.AUDIT, said="4", human="", p=0.5, verdict="ood")
    for reason in (
        ReviewReason.LOW_CONFIDENCE,
        ReviewReason.OUT_OF_DOMAIN,
        ReviewReason.PRIORITY,
        ReviewReason.SUPERVISED,  # the reviewer saw the suggestion
        ReviewReason.DISAGREEMENT,
    ):
        _decided(project, v1, reason, said="3", human="3")
    # A class without a threshold stays in shadow in every stage, and its reviews stay blind.
    late = _decided(project, v1, ReviewReason.SHADOW, said="3", human="3")
    rows = blind_labels(project=project)
    assert [(r.item_id, r.reason) for r in rows] == [
        (shadow.item_id, ReviewReason.SHADOW),
        (audit.item_id, ReviewReason.AUDIT),
        (ood.item_id, ReviewReason.AUDIT),
        (late.item_id, ReviewReason.SHADOW),
    ]
    first, second, third, _ = rows
    assert (first.predicted, first.human, first.correct, first.inclusion_probability) == (
        "3",
        "3",
        True,
        1.0,
    )
    assert (second.correct, second.inclusion_probability, second.weight) == (False, 0.25, 4.0)
    assert third.human == "" and third.correct is False  # out of domain: the model was wrong
    assert first.confidence == pytest.approx(0.9) and first.model_version_id == v1.pk
    assert [r.item_id for r in blind_labels(project=project, label="4")] == [ood.item_id]


def test_a_challenger_is_judged_on_the_same_blind_items_with_its_own_predictions(project):
    champion, challenger = (
        ModelVersionFactory(project=project),
        ModelVersionFactory(project=project),
    )
    a = _decided(project, champion, ReviewReason.SHADOW, said="3", human="5")
    _decided(project, champion, ReviewReason.SHADOW, said="1", human="1")  # no challenger view
    _stage(project, Stage.AUTOMATED)
    b = _decided(project, champion, ReviewReason.AUDIT, said="3", human="3", p=0.5)
    for pred, label in ((a, "5"), (b, "8")):
        Prediction.objects.create(
            item_id=pred.item_id,
            model_version=challenger,
            label=label,
            confidence=0.7,
            probabilities={label: 0.7},
            ood_score=0.0,
            latency_ms=1.0,
        )
    rows = blind_labels(project=project, model_version=challenger)
    assert [(r.item_id, r.predicted, r.correct) for r in rows] == [
        (a.item_id, "5", True),
        (b.item_id, "8", False),
    ]
    assert {r.model_version_id for r in rows} == {challenger.pk}
