"""The edge runner, run where torch and Django cannot be imported, decides as the server does."""

from __future__ import annotations

import hashlib
import shutil
import sys

import pytest

from mlcore.images import load_rgb
from mlcore.predict import Predictor
from mlcore.reference import image_statistics
from reviewapp.rollout import routing
from reviewapp.rollout.policy import Policy, Scored
from tests.edge.conftest import EDGE, POLICY, decisions_of, edge_cli

sys.path.insert(0, str(EDGE))
from handoff_edge.bundle import BundleError, bundle_load  # noqa: E402
from handoff_edge.predict import image_load  # noqa: E402
from handoff_edge.stats import image_statistics as edge_statistics  # noqa: E402


def _server_route(result, *, key: str) -> routing.Route:
    policy = Policy(
        stage=POLICY["stage"],
        labels=tuple(POLICY["labels"]),
        confidence_threshold=POLICY["confidence_threshold"],
        class_thresholds=POLICY["class_thresholds"],
        ood_threshold=POLICY["ood_threshold"],
        traffic_share=POLICY["traffic_share"],
        audit_rate=POLICY["audit_rate"],
        priority_labels=frozenset(POLICY["priority_labels"]),
        kill_switch=POLICY["kill_switch"],
    )
    buckets = routing.Buckets.of(project_id=POLICY["project_id"], key=key)
    return routing.route(prediction=Scored.of(result), policy=policy, buckets=buckets)


def test_the_runner_decides_every_image_as_the_server_would(
    edge_bundle, field_images, tiny_artifact, tmp_path
):
    run = edge_cli("run", "--bundle", str(edge_bundle), *map(str, field_images), cwd=tmp_path)
    edge = decisions_of(run)
    server = Predictor.from_artifact(tiny_artifact.path).predict(list(field_images))
    assert len(edge) == len(server) == len(field_images)
    mismatches = []
    for path, mine, theirs in zip(field_images, edge, server, strict=True):
        key = hashlib.sha256(path.read_bytes()).hexdigest()
        route = _server_route(theirs, key=key)
        expected = (theirs.label, theirs.is_ood, route.action, route.reason)
        got = (mine["label"], mine["is_ood"], mine["action"], mine["reason"])
        close = abs(mine["confidence"] - theirs.confidence) <= 1e-4
        close &= abs(mine["ood_score"] - theirs.ood_score) <= 1e-4
        if got != expected or not close or mine["audit_probability"] != route.audit_probability:
            mismatches.append((path.name, got, expected, mine["confidence"], theirs.confidence))
    assert mismatches == []
    actions = {(d["action"], d["reason"]) for d in edge}
    # The policy and images reach the device's own decisions and the ones sent to people.
    assert ("auto_accept", "") in actions and ("review", "audit") in actions
    assert {"low_confidence", "out_of_domain", "supervised"} & {r for _, r in actions}


def test_a_bundle_with_one_altered_byte_refuses_to_load(edge_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(edge_bundle, copy)
    assert bundle_load(copy).model_sha256
    model = copy / "model.onnx"
    model.chmod(0o644)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx was altered"):
        bundle_load(copy)
    result = edge_cli("verify", str(copy), cwd=tmp_path)
    assert result.returncode == 2 and "was altered" in result.stderr
    assert "model.onnx" in result.stderr and result.stdout == ""


def test_an_unlisted_file_or_a_pickle_is_refused(edge_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(edge_bundle, copy)
    (copy / "extra.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(BundleError, match="unexpected file"):
        bundle_load(copy)


def test_the_blocker_really_blocks_torch_and_django(tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    result = edge_cli("verify", str(probe / "missing"), cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr
    import subprocess

    from tests.edge.conftest import _PRELUDE

    code = _PRELUDE.replace("from handoff_edge.cli import main", "import torch")
    blocked = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert blocked.returncode != 0 and "blocked on the edge: torch" in blocked.stderr


def test_the_device_computes_the_image_statistics_the_server_does(field_images):
    """The statistics a device reports are mlcore's, so the server's guard reads them alike."""
    for path in field_images:
        mine, theirs = edge_statistics(image_load(path)), image_statistics(load_rgb(path))
        assert set(mine) == set(theirs)
        assert all(abs(mine[k] - theirs[k]) <= 1e-9 for k in theirs), path.name
