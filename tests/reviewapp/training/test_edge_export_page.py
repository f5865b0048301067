"""The model version page's Export to ONNX button: the export is queued, a worker writes a bundle
with the policy in force (or the parity cases), the page shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from reviewapp import ml
from reviewapp.rollout import versions
from reviewapp.training import edge_export
from tests.conftest import wait_for
from tests.factories import ReviewerFactory, RolloutAdminFactory
from tests.training_support import labeled_project, training_worker_factory  # noqa: F401


def test_the_button_exports_the_champion_with_the_policy_in_force(
    db, client, tiny_artifact, digit_records
):
    project = labeled_project(records=digit_records[400:480], artifact=tiny_artifact)
    project.confidence_threshold = 0.15
    project.save(update_fields=["confidence_threshold"])
    version = versions.champion_of(project)
    page = reverse("model-version", args=[project.slug, version.number])
    client.force_login(ReviewerFactory())
    assert client.get(page).status_code == 403  # not a reviewer of this project
    client.force_login(RolloutAdminFactory())
    assert b"Not exported yet" in client.get(page).content
    response = client.post(reverse("model-version-export", args=[project.slug, version.number]))
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.metadata[edge_export.EXPORT_KEY]["state"] == "queued"
    waiting = client.get(page).content
    assert b'http-equiv="refresh"' in waiting and b"export-button" not in waiting
    again = client.post(
        reverse("model-version-export", args=[project.slug, version.number]), follow=True
    )
    assert b"already under way" in again.content  # a second click while it runs
    assert edge_export.edge_bundle_export_run(version_id=version.pk) == "exported"  # the job
    version.refresh_from_db()
    entry = version.metadata[edge_export.EXPORT_KEY]
    assert entry["state"] == "exported" and entry["parity"]["passed"]
    assert entry["parity"]["n"] > 0
    bundle = json.loads((Path(entry["path"]) / "bundle.json").read_text())
    assert bundle["policy"]["project_id"] == project.pk
    assert bundle["policy"]["confidence_threshold"] == 0.15
    assert bundle["model"]["sha256"] == version.sha256
    assert b"Parity on" in client.get(page).content


def test_a_refused_export_shows_its_cases_on_the_page(
    db, client, tiny_artifact, digit_records, monkeypatch
):
    project = labeled_project(records=digit_records[400:430], artifact=tiny_artifact)
    version = versions.champion_of(project)
    cases = {
        "passed": False,
        "n": 6,
        "top_agreement": 0.8333,
        "max_probability_diff": 0.4,
        "max_ood_score_diff": 0.0,
        "failures": ["top class agrees on 83.33% < 99.9%"],
        "cases": [
            {
                "image": "digit-0412.png",
                "torch": {"label": "3", "confidence": 0.9, "is_ood": False},
                "onnx": {"label": "8", "confidence": 0.5, "is_ood": False},
                "problems": ["top class differs"],
            }
        ],
        "n_cases": 1,
    }

    def refuse(**kwargs):
        raise ml.BundleExportError("parity check failed", parity=cases)

    monkeypatch.setattr(ml, "bundle_export", refuse)
    client.force_login(RolloutAdminFactory())
    client.post(reverse("model-version-export", args=[project.slug, version.number]))
    assert edge_export.edge_bundle_export_run(version_id=version.pk) == "refused"  # the job
    page = client.get(reverse("model-version", args=[project.slug, version.number]))
    html = page.content.decode()
    assert "Export refused" in html and "digit-0412.png" in html and "top class differs" in html
    version.refresh_from_db()
    assert version.metadata[edge_export.EXPORT_KEY]["state"] == "refused"


@pytest.mark.worker
def test_a_real_training_worker_runs_the_export_the_button_asked_for(
    training_worker_factory,  # noqa: F811
    client,
    tiny_artifact,
    digit_records,
):
    project = labeled_project(records=digit_records[400:440], artifact=tiny_artifact)
    version = versions.champion_of(project)
    worker = training_worker_factory()
    client.force_login(RolloutAdminFactory())
    client.post(reverse("model-version-export", args=[project.slug, version.number]))

    def finished():
        version.refresh_from_db()
        state = version.metadata[edge_export.EXPORT_KEY]["state"]
        return state if state not in edge_export.PENDING_STATES else None

    state = wait_for(finished, timeout=240, message=f"export never finished:\n{worker.log_text()}")
    assert state == "exported", version.metadata[edge_export.EXPORT_KEY]
    assert Path(version.metadata[edge_export.EXPORT_KEY]["path"], "manifest.json").exists()
