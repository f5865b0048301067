"""Loading a bundle: every file checked against manifest.json before anything is used.

The bundle is written by ``python -m mlcore export --format onnx`` (``mlcore/export.py``):
model.onnx, knn_bank.npy, bundle.json, parity.json and manifest.json (sha256 and size of each
other file). A file that is missing, extra or altered by a single byte refuses the whole bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
MANIFEST_FILE = "manifest.json"
BUNDLE_FILE = "bundle.json"
REQUIRED_KEYS = ("labels", "model", "preprocessing", "calibration", "ood", "policy")


class BundleError(Exception):
    """A bundle is missing, incomplete, altered or malformed; the message names the file."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its metadata, graph bytes, kNN bank and manifest digest."""

    path: Path
    metadata: dict
    onnx_model: bytes
    knn_bank: np.ndarray
    sha256: str

    @property
    def labels(self) -> list[str]:
        """The class labels, in output order."""
        return list(self.metadata["labels"])

    @property
    def policy(self) -> dict:
        """The rollout policy in force when the bundle was exported."""
        return dict(self.metadata["policy"])

    @property
    def model_sha256(self) -> str:
        """The sha256 of the server's model version this bundle was exported from."""
        return str(self.metadata["model"]["sha256"])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"bundle file {path} is missing") from None
    except OSError as exc:
        raise BundleError(f"bundle file {path} cannot be read: {exc}") from exc


def _manifest(path: Path) -> tuple[dict, bytes]:
    raw = _read(path / MANIFEST_FILE)
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        if manifest.get("format_version") != BUNDLE_FORMAT:
            raise BundleError(f"{path / MANIFEST_FILE}: unsupported format_version")
        for name, entry in files.items():
            if Path(name).name != name or name in ("", ".", "..", MANIFEST_FILE):
                raise BundleError(f"{path / MANIFEST_FILE}: illegal file name {name!r}")
            if not isinstance(entry.get("sha256"), str):
                raise BundleError(f"{path / MANIFEST_FILE}: no sha256 for {name}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"{path / MANIFEST_FILE} is not a valid manifest: {exc}") from exc
    return manifest, raw


def _verified_files(path: Path, manifest: dict) -> dict[str, bytes]:
    present = {p.name for p in path.iterdir()} - {MANIFEST_FILE}
    expected = set(manifest["files"])
    if missing := sorted(expected - present):
        raise BundleError(f"bundle {path} is missing file(s): {', '.join(missing)}")
    if unexpected := sorted(present - expected):
        raise BundleError(f"bundle {path} has unexpected file(s): {', '.join(unexpected)}")
    files = {}
    for name in sorted(expected):
        data = _read(path / name)
        actual = hashlib.sha256(data).hexdigest()
        if actual != manifest["files"][name]["sha256"]:
            raise BundleError(
                f"bundle file {path / name} was altered: sha256 {actual} does not match the "
                f"manifest's {manifest['files'][name]['sha256']}"
            )
        files[name] = data
    return files


def _metadata(path: Path, files: dict[str, bytes]) -> dict:
    if BUNDLE_FILE not in files:
        raise BundleError(f"bundle {path} manifest does not list {BUNDLE_FILE}")
    try:
        metadata = json.loads(files[BUNDLE_FILE])
    except ValueError as exc:
        raise BundleError(f"{path / BUNDLE_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("kind") != "handoff-edge-bundle":
        raise BundleError(f"{path / BUNDLE_FILE} is not a Handoff edge bundle")
    if missing := [key for key in REQUIRED_KEYS if key not in metadata]:
        raise BundleError(f"{path / BUNDLE_FILE} lacks required key(s): {', '.join(missing)}")
    return metadata


def _array(path: Path, name: str, data: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise BundleError(f"{path / name} is not a plain .npy array: {exc}") from exc


def bundle_load(path: str | Path) -> Bundle:
    """Open a bundle directory, verifying every file's sha256; raises BundleError."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"bundle {path} does not exist or is not a directory")
    manifest, raw = _manifest(path)
    files = _verified_files(path, manifest)
    metadata = _metadata(path, files)
    model_file = metadata["model"].get("file", "model.onnx")
    bank_file = metadata["ood"].get("knn_bank_file", "knn_bank.npy")
    for name in (model_file, bank_file):
        if name not in files:
            raise BundleError(f"bundle {path} manifest does not list {name}")
    bundle = Bundle(
        path=path,
        metadata=metadata,
        onnx_model=files[model_file],
        knn_bank=_array(path, bank_file, files[bank_file]),
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    logger.info("bundle.loaded path=%s sha256=%s", path, bundle.sha256[:12])
    return bundle
