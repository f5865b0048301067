"""ONNX export of the session model: the CLI, the bundle's contents, parity, and refusal."""

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from mlcore import export
from mlcore.artifacts import load_artifact, load_tensors
from mlcore.cli import main

POLICY = {
    "stage": "automated",
    "confidence_threshold": 0.9,
    "class_thresholds": {"3": 0.97, "8": 1.5},
    "ood_threshold": 0.8,
}


@pytest.fixture(scope="module")
def bundle(artifact, valid_records, tmp_path_factory):
    """The session model exported with `python -m mlcore export --format onnx`."""
    root = tmp_path_factory.mktemp("export")
    policy = root / "policy.json"
    policy.write_text(json.dumps(POLICY))
    data = Path(valid_records[0].path).parent.parent
    dest = root / "bundle"
    code = main(
        ["export", "--format", "onnx", "--data", str(data), "--policy", str(policy)]
        + [str(artifact.path), str(dest)]
    )
    assert code == 0
    return dest


def test_the_bundle_holds_every_file_under_its_manifest(bundle):
    names = {p.name for p in bundle.iterdir()}
    assert names == {"model.onnx", "knn_bank.npy", "bundle.json", "parity.json", "manifest.json"}
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = (bundle / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]


def test_the_bundle_carries_what_the_predictor_uses(bundle, artifact):
    meta = json.loads((bundle / "bundle.json").read_text())
    source = load_artifact(artifact.path).metadata
    assert meta["model"]["sha256"] == artifact.sha256
    assert meta["labels"] == source["labels"]
    prep = meta["preprocessing"]
    assert prep["input_size"] == source["input_size"] == 24
    assert prep["resize_method"] == source["resize_method"]
    assert prep["normalization"] == source["normalization"]
    assert meta["calibration"]["temperature"] == source["temperature"]
    assert meta["ood"]["thresholds"] == source["ood_thresholds"]
    assert meta["ood"]["knn_k"] == source["ood"].get("knn_k", 10)
    assert meta["policy"] == POLICY
    bank = np.load(bundle / "knn_bank.npy", allow_pickle=False)  # a plain array, no pickle
    expected = load_tensors(artifact, "reference.safetensors")["knn_bank"].numpy()
    assert bank.dtype == expected.dtype and np.array_equal(bank, expected)


def test_parity_on_the_validation_images_is_stored(bundle, valid_records):
    parity = json.loads((bundle / "parity.json").read_text())
    assert parity["passed"] and 300 < parity["n"] < len(
        list(Path(valid_records[0].path).parents[1].rglob("*.png"))
    )
    assert parity["top_agreement"] >= 0.999
    assert parity["max_probability_diff"] <= 1e-4
    # 1.5 cannot be reached: it is no automation threshold.
    assert parity["criteria"]["same_side_of"] == {
        "confidence": [0.9, 0.97],
        "ood_score": [0.8],
    }
    assert json.loads((bundle / "bundle.json").read_text())["parity"]["passed"]


def test_the_graph_runs_in_onnxruntime_with_any_batch_size(bundle):
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 7):
        logits, features = session.run(None, {"image": np.zeros((n, 3, 24, 24), np.float32)})
        assert logits.shape == (n, 10) and features.shape[0] == n


class _Skewed:
    """An onnxruntime session whose logits for the second image are pushed to another class."""

    def __init__(self, session):
        self.session = session

    def run(self, names, feeds):
        logits, features = self.session.run(names, feeds)
        logits = logits.copy()
        if len(logits) > 1:
            logits[1, int(np.argmin(logits[1]))] += 100.0
        return logits, features


def test_failing_parity_refuses_the_export_and_names_the_cases(
    artifact, valid_records, tmp_path, monkeypatch
):
    real_open = export.onnx_session_open
    monkeypatch.setattr(export, "onnx_session_open", lambda data: _Skewed(real_open(data)))
    images = [r.path for r in valid_records[:4]]
    with pytest.raises(export.ParityError) as raised:
        export.bundle_export(
            artifact_path=artifact.path, dest=tmp_path / "b", images=images, policy=POLICY
        )
    report = raised.value.report
    assert not report.passed and report.top_agreement == 0.75
    assert [case["image"] for case in report.cases] == [str(images[1])]
    assert "top class differs" in report.cases[0]["problems"]
    assert str(images[1]) in str(raised.value)
    assert not (tmp_path / "b").exists()
