"""Exports of a project's labeled items: a pandas DataFrame, or a label/image folder on disk.

Both stream: the response is written to disk chunk by chunk (a spooled temporary file for the
manifest, a temporary zip next to the destination for the images), never held whole in memory;
the images are then copied out of the zip one at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from handoff_client.models import FolderExport
from handoff_client.transport import Transport

try:
    import pandas
except ImportError:  # the optional "pandas" extra
    pandas = None

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 256 * 1024
SPOOL_BYTES = 16 * 1024 * 1024
MANIFEST_COLUMNS = [
    "item_id",
    "key",
    "sha256",
    "label",
    "decided_by",
    "decided_at",
    "width",
    "height",
    "path",
]
_TEXT_COLUMNS = {"key": str, "sha256": str, "label": str, "decided_by": str, "path": str}


def download(transport: Transport, url: str, target: IO[bytes]) -> int:
    """Stream the body of GET ``url`` into ``target``; returns the bytes written."""
    written = 0
    response = transport.send("GET", url, stream=True)
    try:
        for chunk in response.iter_bytes(CHUNK):
            target.write(chunk)
            written += len(chunk)
    finally:
        response.close()
    target.flush()
    return written


def manifest_dataframe(transport: Transport, slug: str, *, format: str = "csv") -> pd.DataFrame:
    """The project's labeled items, one row each, from the CSV or JSON manifest.

    Labels stay strings ("NA" is a label, not a missing value), ``decided_at`` is a UTC
    datetime; with the JSON manifest, ``df.attrs`` holds the project slug and its label set.
    """
    if pandas is None:
        raise ImportError("DataFrames need pandas: pip install 'handoff-client[pandas]'")
    if format not in {"csv", "json"}:
        raise ValueError("format must be 'csv' or 'json'")
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        download(transport, f"projects/{slug}/export/manifest.{format}", spool)
        spool.seek(0)
        if format == "csv":
            frame = pandas.read_csv(spool, dtype=_TEXT_COLUMNS, keep_default_na=False)
        else:
            body = json.load(spool)
            frame = pandas.DataFrame(body["items"], columns=MANIFEST_COLUMNS)
            frame.attrs.update(project=body["project"], labels=body["labels"])
    frame["decided_at"] = pandas.to_datetime(frame["decided_at"], utc=True)
    return frame


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise ValueError(f"refusing an unsafe path in the export: {name!r}")
    return path


def _extract(archive: zipfile.ZipFile, destination: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for member in archive.infolist():
        if member.is_dir():
            continue
        relative = _safe_member(member.filename)
        target = destination.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK)
        if len(relative.parts) > 1:
            counts[relative.parts[0]] += 1
    return counts


def export_folder(
    transport: Transport, slug: str, destination: str | os.PathLike[str], *, manifest: bool = True
) -> FolderExport:
    """Write the project's labeled images as ``destination/<label>/<sha256>.<ext>``.

    Also writes ``labels.json`` (the label set) and, with ``manifest``, ``manifest.csv`` (keys,
    who decided, when). Files are named by content, so exporting again into the same folder
    adds the new images and rewrites the others with the same bytes.
    """
    root = Path(destination)
    root.mkdir(parents=True, exist_ok=True)
    handle, part = tempfile.mkstemp(dir=root, prefix=".export-", suffix=".zip.part")
    try:
        with os.fdopen(handle, "w+b") as spool:
            download(transport, f"projects/{slug}/export/images.zip", spool)
            spool.seek(0)
            with zipfile.ZipFile(spool) as archive:
                counts = _extract(archive, root)
    finally:
        Path(part).unlink(missing_ok=True)
    if manifest:
        with (root / "manifest.csv").open("wb") as sink:
            download(transport, f"projects/{slug}/export/manifest.csv", sink)
    return FolderExport(path=str(root), counts=dict(sorted(counts.items())))
