"""Artifacts: atomic immutable directories, verified on load, never unpickled."""

import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from mlcore import artifacts
from mlcore.artifacts import ArtifactError, load_artifact, save_artifact
from mlcore.predict import Predictor


def _copy(artifact, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(artifact.path, dest)
    for path in dest.iterdir():
        path.chmod(0o644)
    return dest


def test_saved_artifact_has_hashed_files_and_metadata(artifact, trained):
    names = {p.name for p in artifact.path.iterdir()}
    assert names == {"manifest.json", "metadata.json", "model.safetensors", "reference.safetensors"}
    manifest = json.loads((artifact.path / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    meta = artifact.metadata
    assert meta["labels"] == trained.labels and meta["arch"] == "resnet18"
    assert meta["input_size"] == 24 and meta["resize_method"] == "squish"
    assert meta["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["metrics"]["valid_accuracy"] == trained.metrics["valid_accuracy"]
    assert meta["temperature"] == trained.temperature
    assert {"torch", "fastai", "torchvision"} <= set(meta["library_versions"])
    assert len(meta["dataset_hash"]) == 64 and meta["created_at"]
    assert load_artifact(artifact.path).sha256 == artifact.sha256


def test_round_trip_gives_identical_probabilities(artifact, trained, valid_images):
    images = valid_images[:80]
    in_memory = Predictor.from_trained(trained).predict(images, batch_size=32)
    loaded = Predictor.from_artifact(artifact.path).predict(images, batch_size=32)
    for a, b in zip(in_memory, loaded, strict=True):
        assert a.probabilities == b.probabilities
        assert a.ood_scores == b.ood_scores and a.is_ood == b.is_ood


@pytest.mark.parametrize("name", ["model.safetensors", "metadata.json", "reference.safetensors"])
def test_one_altered_byte_refuses_to_load(artifact, tmp_path, name):
    dest = _copy(artifact, tmp_path)
    data = bytearray((dest / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (dest / name).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"{name} was altered"):
        load_artifact(dest)
    with pytest.raises(ArtifactError, match=name):
        Predictor.from_artifact(dest)


def test_missing_and_unexpected_files_are_refused(artifact, tmp_path):
    dest = _copy(artifact, tmp_path)
    (dest / "reference.safetensors").unlink()
    with pytest.raises(ArtifactError, match="missing file.*reference.safetensors"):
        load_artifact(dest)
    dest2 = _copy(artifact, tmp_path / "second")
    (dest2 / "extra.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ArtifactError, match="unexpected file.*extra.pkl"):
        load_artifact(dest2)
    (dest2 / "extra.pkl").unlink()
    (dest2 / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        load_artifact(dest2)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nope")


def test_rewritten_manifest_changes_the_artifact_id(artifact, tmp_path):
    dest = _copy(artifact, tmp_path)
    meta = json.loads((dest / "metadata.json").read_text())
    meta["temperature"] = 0.5
    (dest / "metadata.json").write_text(json.dumps(meta))
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["files"]["metadata.json"]["sha256"] = artifacts.sha256_bytes(
        (dest / "metadata.json").read_bytes()
    )
    (dest / "manifest.json").write_text(json.dumps(manifest))
    assert load_artifact(dest).sha256 != artifact.sha256  # a registered version id no longer fits


def test_loading_never_unpickles(artifact, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    predictor = Predictor.from_artifact(artifact.path)
    assert predictor.sha256 == artifact.sha256


def test_existing_destination_is_refused(trained, artifact):
    with pytest.raises(ArtifactError, match="already exists"):
        save_artifact(trained, artifact.path)


def test_failed_write_leaves_nothing_behind(trained, tmp_path, monkeypatch):
    real = artifacts._write_synced
    calls = []

    def flaky(path, data):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(artifacts, "_write_synced", flaky)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(trained, tmp_path / "v2")
    assert list(tmp_path.iterdir()) == []


def test_files_are_read_only_and_metadata_is_strict_json(artifact):
    for path in artifact.path.iterdir():
        assert (path.stat().st_mode & 0o222) == 0
    text = (artifact.path / "metadata.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert np.isfinite(artifact.metadata["ood_thresholds"]["knn"])


def test_extra_metadata_is_kept(trained, tmp_path):
    saved = save_artifact(trained, tmp_path / "v3", extra_metadata={"training_run": 7})
    assert load_artifact(saved.path).metadata["extra"] == {"training_run": 7}
