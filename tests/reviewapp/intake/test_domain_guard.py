"""The guard in the prediction service: an odd item gets an out-of-domain task with its reason."""

import pytest
from django.urls import reverse

from reviewapp.intake import domain, prediction_service
from reviewapp.models import Alias, DriftSample, Outcome, ReviewReason, Stage
from reviewapp.rollout import versions
from reviewapp.rollout.guard import DomainProfile
from tests.factories import ModelVersionFactory, PredictionFactory, ProjectFactory, ReviewerFactory

pytestmark = pytest.mark.django_db
IN_DOMAIN = {"brightness": 0.7, "gray_share": 1.0, "width": 32.0, "height": 32.0}


@pytest.fixture
def automated(monkeypatch):
    project = ProjectFactory(stage=Stage.AUTOMATED, confidence_threshold=0.5, audit_rate=0.0)
    version = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=version, reason="t")
    profile = DomainProfile.from_samples(
        {"brightness": [0.6, 0.7, 0.8], "gray_share": [1.0] * 3, "width": [32.0] * 3}
        | {"height": [32.0] * 3}
    )
    # The profile an artifact's drift reference would give (the factory's artifact is not real).
    monkeypatch.setitem(domain._PROFILES, version.sha256, profile)
    return project, version


def _predicted(project, version, stats):
    prediction = PredictionFactory(
        item__project=project, model_version=version, label="3", confidence=0.99
    )
    DriftSample.objects.create(prediction=prediction, embedding=[], image_stats=stats)
    return prediction


def test_an_item_of_another_size_goes_to_a_person_with_the_reason_on_the_desk(client, automated):
    project, version = automated
    task = prediction_service.prediction_route(
        prediction=_predicted(project, version, {**IN_DOMAIN, "width": 640.0, "height": 480.0})
    )
    assert task.reason == ReviewReason.OUT_OF_DOMAIN
    assert task.detail == "a 640×480 px frame; the training images were 32×32 px"
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    html = client.get(reverse("desk", args=[project.slug])).content.decode()
    assert "Out of domain: a 640×480 px frame" in html


def test_an_in_domain_item_is_still_decided_by_the_model(automated):
    project, version = automated
    prediction = _predicted(project, version, IN_DOMAIN)
    assert prediction_service.prediction_route(prediction=prediction) is None
    assert Outcome.objects.get(item_id=prediction.item_id).decided_by == "model"


def test_without_image_statistics_only_the_ood_score_is_checked(automated):
    project, version = automated
    plain = PredictionFactory(item__project=project, model_version=version, confidence=0.99)
    assert prediction_service.prediction_route(prediction=plain) is None
    flagged = PredictionFactory(
        item__project=project, model_version=version, confidence=0.99, is_ood=True, ood_score=9.0
    )
    task = prediction_service.prediction_route(prediction=flagged)
    assert task.reason == ReviewReason.OUT_OF_DOMAIN and "score 9" in task.detail
