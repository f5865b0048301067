"""POST /api/v1/projects/<slug>/edge-decisions/: device decisions counted like the server's."""

from __future__ import annotations

import hashlib

import pytest

from reviewapp import ml
from reviewapp.models import DecidedBy, DriftSample, Item, Outcome, Stage
from reviewapp.rollout import routing, selectors, versions
from tests.api.conftest import Api
from tests.factories import ModelVersionFactory, ProjectFactory

AUDIT_RATE = 0.25


@pytest.fixture
def edge_api(db) -> Api:
    project = ProjectFactory(
        labels=["cat", "dog", "fox"],
        stage=Stage.AUTOMATED,
        confidence_threshold=0.9,
        audit_rate=AUDIT_RATE,
        traffic_share=1.0,
    )
    version = ModelVersionFactory(project=project, labels=project.labels)
    versions.alias_set(project=project, alias="champion", model_version=version, reason="test")
    api = Api(project=project)
    api.version = version
    return api


def _key(api: Api, *, audited: bool) -> str:
    """A key whose sticky audit draw is (or is not) inside the audit sample."""
    for n in range(1000):
        key = f"cam-1/{n:04d}"
        bucket = routing.Buckets.of(project_id=api.project.pk, key=key).audit
        if (bucket < AUDIT_RATE) == audited:
            return key
    raise AssertionError("no key found")


def _decision(api: Api, *, key: str, **fields) -> dict:
    return {
        "key": key,
        "sha256": hashlib.sha256(key.encode()).hexdigest(),
        "width": 64,
        "height": 48,
        "image_format": "JPEG",
        "model_sha256": api.version.sha256,
        "label": "fox",
        "confidence": 0.97,
        "ood_score": 0.1,
        "probabilities": {"cat": 0.01, "dog": 0.02, "fox": 0.97},
        **fields,
    }


def _post(api: Api, *decisions: dict):
    url = f"/api/v1/projects/{api.project.slug}/edge-decisions/"
    return api.post_json(url, {"decisions": list(decisions)})


def test_a_confident_decision_is_recorded_as_the_models_outcome(edge_api):
    key = _key(edge_api, audited=False)
    response = _post(edge_api, _decision(edge_api, key=key))
    assert response.status_code == 200, response.content
    (result,) = response.json()["results"]
    assert result["status"] == "recorded"
    outcome = Outcome.objects.get(item_id=result["item_id"])
    assert (outcome.label, outcome.decided_by) == ("fox", DecidedBy.MODEL)
    assert outcome.model_version_id == edge_api.version.pk
    assert outcome.audit_probability == AUDIT_RATE
    item = outcome.item
    assert not item.image and item.prediction_due_at is None and item.source["edge"]
    assert item.predictions.get().confidence == 0.97
    # Counted in the rollout like a server auto-accept.
    assert selectors.auto_accuracy_estimate(project=edge_api.project).population == 1
    again = _post(edge_api, _decision(edge_api, key=key))
    assert again.json()["results"][0]["status"] == "duplicate"
    assert Outcome.objects.count() == 1


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"confidence": 0.5}, "low_confidence"),
        ({"is_ood": True}, "out_of_domain"),
        ({"model_sha256": "f" * 64}, "stale_model"),
    ],
)
def test_what_the_server_would_not_automate_is_sent_back_for_review(edge_api, change, reason):
    response = _post(edge_api, _decision(edge_api, key=_key(edge_api, audited=False), **change))
    (result,) = response.json()["results"]
    assert result["status"] == "review" and result["reason"].startswith(reason)
    assert not Item.objects.exists() and not Outcome.objects.exists()


def test_the_audit_sample_and_the_kill_switch_send_the_image_to_people(edge_api):
    audited = _post(edge_api, _decision(edge_api, key=_key(edge_api, audited=True)))
    assert audited.json()["results"][0] == {
        "key": _key(edge_api, audited=True),
        "status": "review",
        "reason": "audit",
        "item_id": None,
    }
    edge_api.project.kill_switch = True
    edge_api.project.save(update_fields=["kill_switch"])
    killed = _post(edge_api, _decision(edge_api, key=_key(edge_api, audited=False)))
    assert killed.json()["results"][0]["reason"] == "shadow"
    assert not Outcome.objects.exists()


def test_bad_reports_are_refused_and_other_projects_are_not_reachable(edge_api):
    bad = _post(edge_api, _decision(edge_api, key="k1", sha256="nothex"))
    assert bad.status_code == 400
    other = ProjectFactory(labels=["cat"])
    url = f"/api/v1/projects/{other.slug}/edge-decisions/"
    body = {"decisions": [_decision(edge_api, key="k2")]}
    assert edge_api.post_json(url, body).status_code == 404
    assert not Item.objects.exists()


@pytest.fixture
def guarded_api(db, tiny_artifact) -> Api:
    """An automated project whose champion (the tiny model) has a domain profile."""
    labels = list(tiny_artifact.metadata["labels"])
    project = ProjectFactory(
        labels=labels,
        stage=Stage.AUTOMATED,
        confidence_threshold=0.5,
        audit_rate=0.0,
        traffic_share=1.0,
    )
    version = versions.champion_register(project=project, artifact=tiny_artifact, reason="test")
    api = Api(project=project)
    api.version = version
    reference = ml.drift_reference(artifact_path=version.artifact_path, sha256=version.sha256)
    api.in_domain = {name: float(values[0]) for name, values in reference.image_stats.items()}
    return api


def _guarded(api: Api, key: str, **fields) -> dict:
    label = api.project.labels[0]
    probabilities = {name: 0.0 for name in api.project.labels} | {label: 0.99}
    return _decision(
        api, key=key, label=label, confidence=0.99, probabilities=probabilities, **fields
    )


def test_the_domain_guard_checks_the_statistics_a_device_reports(guarded_api):
    """Statistics unlike the champion's training images send the item to people; statistics like
    them let the device's decision stand and are kept as the item's drift sample."""
    washed_out = {**guarded_api.in_domain, "brightness": 0.99, "contrast": 0.0}
    response = _post(guarded_api, _guarded(guarded_api, "cam/1", image_stats=washed_out))
    (result,) = response.json()["results"]
    assert result["status"] == "review" and result["reason"] == "out_of_domain"
    assert not Item.objects.filter(client_key="cam/1").exists()
    response = _post(guarded_api, _guarded(guarded_api, "cam/2", image_stats=guarded_api.in_domain))
    (result,) = response.json()["results"]
    assert result["status"] == "recorded", result
    sample = DriftSample.objects.get(prediction__item_id=result["item_id"])
    assert sample.image_stats == guarded_api.in_domain
    # Without statistics (an older runner) the guard has nothing to check: as before.
    (result,) = _post(guarded_api, _guarded(guarded_api, "cam/3")).json()["results"]
    assert result["status"] == "recorded"


def test_an_unknown_image_statistic_is_refused_by_name(guarded_api):
    response = _post(guarded_api, _guarded(guarded_api, "cam/9", image_stats={"sharpness": 1.0}))
    assert response.status_code == 400
    assert "sharpness" in response.json()["error"]["message"]
    assert not Item.objects.filter(client_key="cam/9").exists()
