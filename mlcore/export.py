"""Edge bundles: a model version exported to ONNX with all it needs to reproduce its decisions.

Layout (never a pickle; `handoff_edge` in ``edge/`` loads it without torch)::

    <dest>/model.onnx     the network, exported by torch.onnx's dynamo exporter: input ``image``
                          (N x 3 x S x S float32, normalised), outputs ``logits`` and ``features``
    <dest>/knn_bank.npy   normalised training embeddings (float16, as the artifact stores them)
                          for the kNN OOD score; written with ``allow_pickle=False``
    <dest>/bundle.json    labels, preprocessing, calibration temperature, OOD scoring and its
                          thresholds, the rollout policy in force, the source artifact's sha256
    <dest>/parity.json    onnxruntime versus torch on the validation images, case by case
    <dest>/manifest.json  sha256 and size of every other file

The parity check runs the same preprocessed batches through torch and onnxruntime and scores
both with the Predictor's own functions (temperature-scaled softmax, OOD scores), so what it
compares is the exported graph. A bundle is written only when parity holds (``ParityError``
carries the failing cases otherwise); the edge runner's own numpy preprocessing is checked
against the Predictor by ``tests/edge``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from mlcore import ood
from mlcore.artifacts import json_safe, library_versions, manifest_bytes, sha256_bytes
from mlcore.images import ImageSource, describe_source
from mlcore.nets import forward_with_features
from mlcore.predict import Predictor

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
ONNX_FILE = "model.onnx"
KNN_BANK_FILE = "knn_bank.npy"
BUNDLE_FILE = "bundle.json"
PARITY_FILE = "parity.json"
MANIFEST_FILE = "manifest.json"
INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "features")
MIN_TOP_AGREEMENT = 0.999
TIE_TOLERANCE = 1e-5  # relative: a threshold tie within this is float rounding
MAX_PROBABILITY_DIFF = 1e-4
MAX_CASES_SHOWN = 20


class ExportError(Exception):
    """The export could not be made (bad destination, exporter failure)."""


class ParityError(ExportError):
    """onnxruntime and torch disagree beyond tolerance; ``report`` holds the failing cases."""

    def __init__(self, report: ParityReport):
        self.report = report
        shown = "; ".join(_case_text(case) for case in report.cases[:5])
        super().__init__(f"parity check failed ({', '.join(report.failures)}): {shown}")


@dataclass
class ParityReport:
    """The parity check's numbers, its verdict and the failing images."""

    n: int
    top_agreement: float
    max_probability_diff: float
    max_ood_score_diff: float
    thresholds: dict[str, list[float]]
    failures: list[str] = field(default_factory=list)
    cases: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every criterion holds."""
        return not self.failures

    def summary(self) -> dict:
        """JSON summary for the model version (the cases trimmed to MAX_CASES_SHOWN)."""
        return json_safe(
            {
                "passed": self.passed,
                "n": self.n,
                "top_agreement": self.top_agreement,
                "max_probability_diff": self.max_probability_diff,
                "max_ood_score_diff": self.max_ood_score_diff,
                "criteria": {
                    "min_top_agreement": MIN_TOP_AGREEMENT,
                    "max_probability_diff": MAX_PROBABILITY_DIFF,
                    "same_side_of": self.thresholds,
                },
                "failures": self.failures,
                "cases": self.cases[:MAX_CASES_SHOWN],
                "n_cases": len(self.cases),
            }
        )


@dataclass(frozen=True)
class BundleExport:
    """A written bundle: where it is, the sha256 of its manifest, and its parity summary."""

    path: Path
    sha256: str
    parity: dict
    size_bytes: int


class _GraphForExport(nn.Module):
    """(logits, penultimate features) of a (body, head) network: what the edge needs."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return forward_with_features(self.network, image)


def onnx_bytes_export(*, predictor: Predictor) -> bytes:
    """The predictor's network as ONNX bytes (dynamo exporter, dynamic batch size, fp32)."""
    size = predictor.preprocessing.size
    graph = _GraphForExport(predictor.model).to("cpu").float().eval()
    example = (torch.zeros(2, 3, size, size),)
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        program = torch.onnx.export(
            graph,
            example,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={"image": {0: batch}},
            optimize=True,
            verbose=False,
        )
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; say which step
        raise ExportError(f"torch.onnx.export (dynamo) failed: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ONNX_FILE
        program.save(path, external_data=False)
        return path.read_bytes()


def onnx_session_open(data: bytes) -> ort.InferenceSession:
    """An onnxruntime CPU session for ONNX bytes, with as many threads as torch uses."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def policy_thresholds(policy: dict) -> dict[str, list[float]]:
    """The automation thresholds in a policy: confidence (global and per class) and OOD score."""
    confidence = {float(policy.get("confidence_threshold", 1.01))}
    confidence |= {float(v) for v in (policy.get("class_thresholds") or {}).values()}
    ood_thresholds = [] if policy.get("ood_threshold") is None else [policy["ood_threshold"]]
    return {
        "confidence": sorted(t for t in confidence if t <= 1.0),
        "ood_score": [float(t) for t in ood_thresholds],
    }


def _decisions(predictor: Predictor, logits: np.ndarray, features: np.ndarray) -> dict:
    probs, scores = predictor.scores(logits, features)
    primary = predictor.ood_config.get("primary_score", ood.DEFAULT_PRIMARY_SCORE)
    threshold = predictor.ood_thresholds.get(primary)
    score = scores[primary]
    return {
        "probs": probs,
        "top": probs.argmax(axis=1),
        "confidence": probs.max(axis=1),
        "ood_score": score,
        "is_ood": np.zeros(len(score), bool) if threshold is None else score > threshold,
        "ood_threshold": None if threshold is None else float(threshold),
    }


def _case_text(case: dict) -> str:
    return f"{case['image']}: {', '.join(case['problems'])}"


def _sides_differ(a: float, b: float, threshold: float, *, inclusive: bool) -> bool:
    """a and b fall on different sides of the threshold, beyond float noise.

    Thresholds are quantiles of validation scores, so a validation image can sit exactly on one;
    a flip by less than TIE_TOLERANCE (relative) is rounding, not a different decision.
    """
    side = (lambda v: v <= threshold) if inclusive else (lambda v: v < threshold)
    if side(a) == side(b):
        return False
    return max(abs(a - threshold), abs(b - threshold)) > TIE_TOLERANCE * max(1.0, abs(threshold))


def _image_problems(i: int, torch_side: dict, onnx_side: dict, thresholds: dict) -> list[str]:
    problems = []
    if torch_side["top"][i] != onnx_side["top"][i]:
        problems.append("top class differs")
    diff = float(np.abs(torch_side["probs"][i] - onnx_side["probs"][i]).max())
    if diff > MAX_PROBABILITY_DIFF:
        problems.append(f"probability differs by {diff:.2e}")
    a_conf, b_conf = float(torch_side["confidence"][i]), float(onnx_side["confidence"][i])
    for t in thresholds["confidence"]:
        if _sides_differ(a_conf, b_conf, t, inclusive=False):
            problems.append(f"confidence on different sides of {t}")
    a_ood, b_ood = float(torch_side["ood_score"][i]), float(onnx_side["ood_score"][i])
    flag_threshold = torch_side["ood_threshold"]
    if torch_side["is_ood"][i] != onnx_side["is_ood"][i] and (
        flag_threshold is None or _sides_differ(a_ood, b_ood, flag_threshold, inclusive=True)
    ):
        problems.append("model's out-of-domain flag differs")
    for t in thresholds["ood_score"]:
        if _sides_differ(a_ood, b_ood, t, inclusive=True):
            problems.append(f"OOD score on different sides of {t}")
    return problems


def _case(predictor: Predictor, name: str, i: int, torch_side: dict, onnx_side: dict) -> dict:
    def side(values: dict) -> dict:
        return {
            "label": predictor.labels[int(values["top"][i])],
            "confidence": float(values["confidence"][i]),
            "ood_score": float(values["ood_score"][i]),
            "is_ood": bool(values["is_ood"][i]),
        }

    return {"image": name, "torch": side(torch_side), "onnx": side(onnx_side)}


def parity_check(
    *,
    predictor: Predictor,
    session: ort.InferenceSession,
    images: Sequence[ImageSource],
    policy: dict,
    batch_size: int = 64,
) -> ParityReport:
    """Compare onnxruntime with torch on the same preprocessed images (see the module doc)."""
    if not images:
        raise ExportError("the parity check needs at least one validation image")
    thresholds = policy_thresholds(policy)
    prep = predictor.preprocessing
    torch_logits, torch_features, onnx_logits, onnx_features = [], [], [], []
    model = predictor.model.to("cpu").float().eval()
    for start in range(0, len(images), batch_size):
        views = [prep.view(source) for source in images[start : start + batch_size]]
        x = prep.batch(views)
        with torch.inference_mode():
            logits, features = forward_with_features(model, x)
        torch_logits.append(logits.numpy())
        torch_features.append(features.numpy())
        out_logits, out_features = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
        onnx_logits.append(out_logits)
        onnx_features.append(out_features)
    torch_side = _decisions(predictor, np.concatenate(torch_logits), np.concatenate(torch_features))
    onnx_side = _decisions(predictor, np.concatenate(onnx_logits), np.concatenate(onnx_features))
    cases = []
    for i, source in enumerate(images):
        if problems := _image_problems(i, torch_side, onnx_side, thresholds):
            name = describe_source(source)
            cases.append({**_case(predictor, name, i, torch_side, onnx_side), "problems": problems})
    report = ParityReport(
        n=len(images),
        top_agreement=float((torch_side["top"] == onnx_side["top"]).mean()),
        max_probability_diff=float(np.abs(torch_side["probs"] - onnx_side["probs"]).max()),
        max_ood_score_diff=float(np.abs(torch_side["ood_score"] - onnx_side["ood_score"]).max()),
        thresholds=thresholds,
        cases=cases,
    )
    if report.top_agreement < MIN_TOP_AGREEMENT:
        report.failures.append(f"top class agrees on {report.top_agreement:.2%} < 99.9%")
    if report.max_probability_diff > MAX_PROBABILITY_DIFF:
        report.failures.append(f"max probability difference {report.max_probability_diff:.2e}")
    if any("different sides" in p or "flag differs" in p for c in cases for p in c["problems"]):
        report.failures.append("an image falls on different sides of a threshold")
    return report


def bundle_metadata(*, predictor: Predictor, policy: dict, parity: dict) -> dict:
    """bundle.json: everything the edge runner needs besides the graph and the kNN bank."""
    ood_config = predictor.ood_config
    return json_safe(
        {
            "format_version": BUNDLE_FORMAT,
            "kind": "handoff-edge-bundle",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": {
                "sha256": predictor.sha256,
                "arch": predictor.metadata.get("arch"),
                "file": ONNX_FILE,
                "input": INPUT_NAME,
                "outputs": list(OUTPUT_NAMES),
                "dtype": "float32",
            },
            "labels": predictor.labels,
            # mlcore.images: load_rgb (EXIF transpose, alpha on white), resize_for_model
            # (bilinear, the centre for crop), then (x / 255 - mean) / std in float32.
            "preprocessing": {**predictor.preprocessing.to_dict(), "resample": "bilinear"},
            "calibration": {"temperature": predictor.temperature},
            "ood": {
                "primary_score": ood_config.get("primary_score", ood.DEFAULT_PRIMARY_SCORE),
                "knn_k": int(ood_config.get("knn_k", ood.DEFAULT_KNN_K)),
                "thresholds": predictor.ood_thresholds,
                "knn_bank_file": KNN_BANK_FILE,
            },
            "policy": policy,
            "parity": {k: v for k, v in parity.items() if k != "cases"},
            "library_versions": {**library_versions(), "onnxruntime": ort.__version__},
        }
    )


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_directory(dest: Path, files: dict[str, bytes]) -> str:
    """Write files and their manifest into a temporary folder renamed to dest; manifest sha."""
    manifest = manifest_bytes(files)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        for name, data in {**files, MANIFEST_FILE: manifest}.items():
            (tmp / name).write_bytes(data)
        if dest.exists():
            raise ExportError(f"bundle destination {dest} appeared while writing")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sha256_bytes(manifest)


def bundle_export(
    *,
    artifact_path: str | Path,
    dest: str | Path,
    images: Sequence[ImageSource],
    policy: dict | None = None,
) -> BundleExport:
    """Export an artifact to an edge bundle at dest after a passing parity check.

    Raises ParityError (with the cases) when onnxruntime and torch disagree, ExportError when
    dest exists or the exporter fails; nothing is written then.
    """
    dest = Path(dest)
    if dest.exists():
        raise ExportError(f"bundle destination {dest} already exists")
    policy = json_safe(dict(policy or {}))
    predictor = Predictor.from_artifact(artifact_path, device="cpu")
    onnx_data = onnx_bytes_export(predictor=predictor)
    report = parity_check(
        predictor=predictor, session=onnx_session_open(onnx_data), images=images, policy=policy
    )
    logger.info(
        "export.parity passed=%s n=%d top=%.4f max_diff=%.2e",
        report.passed,
        report.n,
        report.top_agreement,
        report.max_probability_diff,
    )
    if not report.passed:
        raise ParityError(report)
    parity = report.summary()
    files = {
        ONNX_FILE: onnx_data,
        KNN_BANK_FILE: _npy_bytes(predictor.knn_bank.numpy()),
        BUNDLE_FILE: json.dumps(
            bundle_metadata(predictor=predictor, policy=policy, parity=parity),
            indent=2,
            sort_keys=True,
            allow_nan=False,
        ).encode(),
        PARITY_FILE: json.dumps(parity, indent=2, sort_keys=True).encode(),
    }
    sha256 = _write_directory(dest, files)
    size = sum(p.stat().st_size for p in dest.iterdir())
    logger.info("export.written path=%s sha256=%s bytes=%d", dest, sha256, size)
    return BundleExport(path=dest, sha256=sha256, parity=parity, size_bytes=size)
