"""``Client``: one object for everything a pipeline does with Handoff's REST API (/api/v1/)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterable, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from handoff_client import exports
from handoff_client.errors import DecisionTimeout, HandoffError, NotFound
from handoff_client.feed import OutcomeFeed
from handoff_client.models import FolderExport, Item, Project, UploadResult
from handoff_client.progress import ProgressOption, progress_bar
from handoff_client.transport import RetryPolicy, Transport
from handoff_client.uploads import (
    MAX_BATCH,
    MAX_BATCH_BYTES,
    Upload,
    UploadSource,
    as_upload,
    batches,
    folder_files,
    folder_uploads,
)

if TYPE_CHECKING:
    import pandas as pd

ProjectRef = str | Project


def _slug(project: ProjectRef) -> str:
    """A project's slug, from the slug itself or anything with a ``slug`` (a Project)."""
    slug = getattr(project, "slug", project)
    if not isinstance(slug, str):
        raise TypeError(f"expected a project slug or Project, got {type(project).__name__}")
    return slug


def api_root(base_url: str) -> str:
    """``https://host[/prefix]`` (or the same ending in /api/v1) as the API root, ending in '/'."""
    root = base_url.rstrip("/")
    if not root.endswith("/api/v1"):
        root += "/api/v1"
    return root + "/"


def _entry(upload: Upload) -> dict[str, Any]:
    entry: dict[str, Any] = {"image": base64.b64encode(upload.data).decode(), "key": upload.key}
    if upload.label:
        entry["label"] = upload.label
    if upload.source:
        entry["source"] = upload.source
    return entry


class Client:
    """A client for one Handoff server and one API token.

    ``base_url`` and ``token`` default to the HANDOFF_URL and HANDOFF_TOKEN environment
    variables. Requests are retried on 429, 5xx and connection errors as ``retry`` says
    (``Retry-After`` honoured); refusals raise ``HandoffError`` subclasses. Use it as a context
    manager, or call ``close()``.
    ``sleep`` is what waits between retries and polls; ``http`` replaces the httpx client (for
    a custom transport), and then its base URL and Authorization header are the caller's.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("HANDOFF_URL", "")
        token = token or os.environ.get("HANDOFF_TOKEN", "")
        if not base_url or not token:
            raise ValueError("give base_url and token (or set HANDOFF_URL and HANDOFF_TOKEN)")
        self.base_url = api_root(base_url)
        self.timeout = timeout
        self._transport = Transport(
            base_url=self.base_url,
            token=token,
            retry=retry or RetryPolicy(),
            timeout=timeout,
            sleep=sleep,
            http=http,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Projects and items

    def projects(self) -> list[Project]:
        """The projects this token may use, with their label sets."""
        return [Project.from_json(row) for row in self._transport.json("GET", "projects/")]

    def project(self, slug: str) -> Project:
        """One of this token's projects; NotFound when it has no such project."""
        for project in self.projects():
            if project.slug == slug:
                return project
        raise NotFound(f"No project '{slug}' for this token.", code="not_found", status=404)

    def item(self, item: int | Item) -> Item:
        """An item's current status (and outcome, once decided)."""
        item_id = item.id if isinstance(item, Item) else item
        return Item.from_json(self._transport.json("GET", f"items/{item_id}/"))

    # Uploads

    def submit(
        self,
        project: ProjectRef,
        image: UploadSource,
        *,
        key: str | None = None,
        label: str = "",
        source: dict[str, Any] | None = None,
        wait: float = 0.0,
    ) -> UploadResult:
        """Upload one image through the single-item endpoint.

        With ``wait`` > 0 the server predicts at once and answers within that many seconds
        (at most its HANDOFF_API_MAX_WAIT_SECONDS), so the returned item may already be
        routed or decided; otherwise the prediction runs on a worker.
        """
        upload = as_upload(image)
        if key or label or source:
            upload = Upload.from_bytes(
                upload.data,
                key=key or upload.key,
                label=label or upload.label,
                source={**upload.source, **(source or {})},
            )
        fields: dict[str, str] = {"key": upload.key, "wait": str(wait)}
        if upload.label:
            fields["label"] = upload.label
        if upload.source:
            fields["source"] = json.dumps(upload.source)
        filename = Path(str(upload.source.get("filename") or "upload")).name
        response = self._transport.send(
            "POST",
            f"projects/{_slug(project)}/items/",
            data=fields,
            files={"file": (filename, upload.data)},
            timeout=self.timeout + wait,
        )
        created = response.status_code != 200  # 200: this key or content was stored before
        return UploadResult(item=Item.from_json(response.json()), created=created)

    def upload(
        self,
        project: ProjectRef,
        images: Iterable[UploadSource],
        *,
        batch_size: int = MAX_BATCH,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        progress: ProgressOption = False,
        total: int | None = None,
    ) -> list[UploadResult]:
        """Upload images in batches; returns one result per image, in order.

        ``images`` may mix paths, bytes, PIL images, numpy arrays and ``Upload`` objects (which
        carry an explicit key, label and source); it is read one batch at a time. A batch is
        stored whole or not at all; when one is refused the exception says which images it held
        and the batches before it stay stored: uploading the same images again is safe.
        """
        slug = _slug(project)
        if total is None and isinstance(images, Sized):
            total = len(images)
        bar = progress_bar(progress, total=total, description=f"upload to {slug}")
        results: list[UploadResult] = []
        try:
            for batch in batches(images, size=batch_size, max_bytes=max_batch_bytes):
                try:
                    results += self._upload_batch(slug, batch)
                except HandoffError as exc:
                    end = len(results) + len(batch) - 1
                    exc.add_note(f"in the batch of images {len(results)}..{end} (from 0)")
                    raise
                bar.update(len(batch))
        finally:
            bar.close()
        return results

    def _upload_batch(self, slug: str, batch: list[Upload]) -> list[UploadResult]:
        body = {"items": [_entry(upload) for upload in batch]}
        answer = self._transport.json("POST", f"projects/{slug}/items/batch/", json=body)
        return [
            UploadResult(item=Item.from_json(row["item"]), created=row["created"])
            for row in answer["results"]
        ]

    def upload_folder(
        self,
        project: ProjectRef,
        folder: str | os.PathLike[str],
        *,
        keys: str = "sha256",
        key_prefix: str = "",
        label_from_folder: bool = False,
        batch_size: int = MAX_BATCH,
        progress: ProgressOption = True,
    ) -> list[UploadResult]:
        """Upload every image under ``folder``, recursively, with a progress bar.

        Keys are the content's sha256 (``keys="sha256"``) or ``key_prefix`` + the path relative
        to ``folder`` (``keys="path"``); ``source["path"]`` always holds the relative path.
        ``label_from_folder`` labels each image with its first folder (``cat/0001.png`` → cat).
        """
        root = Path(folder)
        files = folder_files(root)
        uploads = folder_uploads(
            root, files, keys=keys, key_prefix=key_prefix, label_from_folder=label_from_folder
        )
        return self.upload(
            project, uploads, batch_size=batch_size, progress=progress, total=len(files)
        )

    # Decisions and outcomes

    def wait_for_decision(
        self,
        item: int | Item,
        *,
        timeout: float = 300.0,
        interval: float = 0.5,
        max_interval: float = 10.0,
    ) -> Item:
        """Poll the item's status until it is decided; raises DecisionTimeout after ``timeout``.

        The interval grows by half after each poll, from ``interval`` up to ``max_interval``.
        """
        item_id = item.id if isinstance(item, Item) else item
        deadline = time.monotonic() + timeout
        while True:
            current = self.item(item_id)
            if current.decided:
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                raise DecisionTimeout(
                    f"item {item_id} is still {current.status} after {timeout:g}s",
                    code="decision_timeout",
                )
            self._transport.sleep(min(interval, left))
            interval = min(max_interval, interval * 1.5)

    def outcomes(
        self,
        project: ProjectRef | None = None,
        *,
        decided_by: str | None = None,
        label: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        follow: bool = False,
        poll_interval: float = 5.0,
        stop: Callable[[], bool] | None = None,
    ) -> OutcomeFeed:
        """Final outcomes oldest first through the cursor feed (see ``OutcomeFeed``).

        Save ``feed.cursor`` after iterating and pass it back as ``cursor`` to resume there.
        """
        params = {
            "project": _slug(project) if project is not None else None,
            "decided_by": decided_by,
            "label": label,
            "page_size": page_size,
        }
        return OutcomeFeed(
            self._transport,
            params=params,
            cursor=cursor,
            follow=follow,
            poll_interval=poll_interval,
            stop=stop,
        )

    # Exports

    def export_dataframe(self, project: ProjectRef, *, format: str = "csv") -> pd.DataFrame:
        """The project's labeled items as a DataFrame (from the streamed CSV or JSON manifest)."""
        return exports.manifest_dataframe(self._transport, _slug(project), format=format)

    def export_folder(
        self,
        project: ProjectRef,
        destination: str | os.PathLike[str],
        *,
        manifest: bool = True,
    ) -> FolderExport:
        """Write the labeled images to ``destination/<label>/<sha256>.<ext>`` (streamed)."""
        return exports.export_folder(
            self._transport, _slug(project), destination, manifest=manifest
        )
