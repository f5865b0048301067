"""Immutable model artifacts: one directory per version, written atomically, verified on load.

Layout::

    <dest>/model.safetensors      network state dict (safetensors: tensors only, no pickle)
    <dest>/reference.safetensors  normalised training embeddings for kNN OOD scoring, plus the
                                 validation sample drift monitoring compares with
    <dest>/metadata.json          labels, preprocessing, metrics, calibration, thresholds, ...
    <dest>/manifest.json          sha256 and size of every other file

The artifact's id (`Artifact.sha256`) is the sha256 of manifest.json, which pins every byte.
"""

import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

import mlcore
from mlcore.model import TrainedModel

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
REFERENCE_FILE = "reference.safetensors"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
REQUIRED_METADATA = ("labels", "arch", "input_size", "resize_method", "pad_mode", "normalization")
_VERSIONED_PACKAGES = ("torch", "torchvision", "fastai", "numpy", "pillow", "safetensors")


class ArtifactError(Exception):
    """An artifact is missing, incomplete, altered or malformed; the message says which file."""


@dataclass
class Artifact:
    """A verified artifact directory."""

    path: Path
    metadata: dict
    sha256: str
    manifest: dict = field(default_factory=dict)

    def read_verified(self, name: str) -> bytes:
        """Read one file of the artifact, re-checking its hash against the manifest."""
        return _read_verified(self.path, name, self.manifest)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's behaviour."""
    versions = {"python": platform.python_version(), "mlcore": mlcore.__version__}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def json_safe(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into strict-JSON values."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def trained_metadata(model: TrainedModel, extra_metadata: dict | None = None) -> dict:
    """The metadata.json content describing a trained model."""
    return json_safe(
        {
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "labels": list(model.labels),
            "arch": model.config.arch,
            **model.preprocessing.to_dict(),
            "embedding_dim": int(model.knn_bank.shape[1]),
            "train_config": dataclasses.asdict(model.config),
            "library_versions": library_versions(),
            "dataset_hash": model.dataset_hash,
            "n_train": model.n_train,
            "n_valid": model.n_valid,
            "metrics": model.metrics,
            "temperature": model.temperature,
            "ood_thresholds": model.ood_thresholds,
            "ood": model.ood_config,
            "reference_stats": model.reference_stats,
            "history": model.history,
            "extra": extra_metadata or {},
        }
    )


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return save_safetensors(contiguous, {"format": "pt"})


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    path.chmod(0o444)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def artifact_files(model: TrainedModel, extra_metadata: dict | None = None) -> dict[str, bytes]:
    """The bytes of every file of an artifact except the manifest."""
    metadata = trained_metadata(model, extra_metadata)
    return {
        WEIGHTS_FILE: _tensor_bytes(model.model.state_dict()),
        REFERENCE_FILE: _tensor_bytes({"knn_bank": model.knn_bank, **model.drift_tensors}),
        METADATA_FILE: json.dumps(metadata, indent=2, sort_keys=True, allow_nan=False).encode(),
    }


def manifest_bytes(files: dict[str, bytes]) -> bytes:
    """manifest.json content: format version plus sha256 and size of each file."""
    entries = {
        name: {"sha256": sha256_bytes(data), "bytes": len(data)} for name, data in files.items()
    }
    manifest = {"format_version": FORMAT_VERSION, "files": entries}
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


def save_artifact(
    model: TrainedModel, dest: str | Path, *, extra_metadata: dict | None = None
) -> Artifact:
    """Write a trained model as a new artifact directory at `dest` (which must not exist)."""
    dest = Path(dest)
    if dest.exists():
        raise ArtifactError(f"artifact destination {dest} already exists; artifacts are immutable")
    dest.parent.mkdir(parents=True, exist_ok=True)
    files = artifact_files(model, extra_metadata)
    manifest = manifest_bytes(files)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        for name, data in {**files, MANIFEST_FILE: manifest}.items():
            _write_synced(tmp / name, data)
        tmp.chmod(0o755)
        _fsync_dir(tmp)
        if dest.exists():
            raise ArtifactError(f"artifact destination {dest} appeared while writing")
        os.rename(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    artifact = Artifact(dest, json.loads(files[METADATA_FILE]), sha256_bytes(manifest))
    artifact.manifest = json.loads(manifest)
    logger.info("artifacts.saved path=%s sha256=%s", dest, artifact.sha256)
    return artifact


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"artifact file {path} is missing") from None
    except OSError as exc:
        raise ArtifactError(f"artifact file {path} cannot be read: {exc}") from exc


def _parse_manifest(path: Path, data: bytes) -> dict:
    try:
        manifest = json.loads(data)
        files = manifest["files"]
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"{path / MANIFEST_FILE}: unsupported format_version "
                f"{manifest.get('format_version')!r} (expected {FORMAT_VERSION})"
            )
        for name, entry in files.items():
            if Path(name).name != name or name in ("", ".", "..", MANIFEST_FILE):
                raise ArtifactError(f"{path / MANIFEST_FILE}: illegal file name {name!r}")
            if not isinstance(entry.get("sha256"), str):
                raise ArtifactError(f"{path / MANIFEST_FILE}: no sha256 for {name}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{path / MANIFEST_FILE} is not a valid manifest: {exc}") from exc
    return manifest


def _read_verified(path: Path, name: str, manifest: dict) -> bytes:
    entry = manifest["files"].get(name)
    if entry is None:
        raise ArtifactError(f"{path / name} is not listed in the artifact manifest")
    data = _read_file(path / name)
    actual = sha256_bytes(data)
    if actual != entry["sha256"]:
        raise ArtifactError(
            f"artifact file {path / name} was altered: sha256 {actual} does not match "
            f"the manifest's {entry['sha256']}"
        )
    return data


def _check_file_set(path: Path, manifest: dict) -> None:
    present = {p.name for p in path.iterdir()} - {MANIFEST_FILE}
    expected = set(manifest["files"])
    if missing := sorted(expected - present):
        raise ArtifactError(f"artifact {path} is missing file(s): {', '.join(missing)}")
    if unexpected := sorted(present - expected):
        raise ArtifactError(f"artifact {path} has unexpected file(s): {', '.join(unexpected)}")
    if required := sorted({WEIGHTS_FILE, METADATA_FILE} - expected):
        raise ArtifactError(f"artifact {path} manifest does not list {', '.join(required)}")


def _parse_metadata(path: Path, data: bytes) -> dict:
    try:
        metadata = json.loads(data)
    except ValueError as exc:
        raise ArtifactError(f"{path / METADATA_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{path / METADATA_FILE} must hold a JSON object")
    if missing := [key for key in REQUIRED_METADATA if key not in metadata]:
        raise ArtifactError(f"{path / METADATA_FILE} lacks required key(s): {', '.join(missing)}")
    return metadata


def load_artifact(path: str | Path) -> Artifact:
    """Open an artifact directory, verifying every file's sha256; raises ArtifactError."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"artifact {path} does not exist or is not a directory")
    raw_manifest = _read_file(path / MANIFEST_FILE)
    manifest = _parse_manifest(path, raw_manifest)
    _check_file_set(path, manifest)
    verified = {name: _read_verified(path, name, manifest) for name in sorted(manifest["files"])}
    metadata = _parse_metadata(path, verified[METADATA_FILE])
    return Artifact(path, metadata, sha256_bytes(raw_manifest), manifest)


def load_tensors(artifact: Artifact, name: str) -> dict[str, torch.Tensor]:
    """Load a verified safetensors file of an artifact (never unpickles)."""
    data = artifact.read_verified(name)
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError) as exc:
        raise ArtifactError(
            f"{artifact.path / name} is not a valid safetensors file: {exc}"
        ) from exc
