"""The server side of the device: the Handoff REST API with a token scoped to one project.

Only two calls: upload an image people must see (the ordinary submit endpoint), and report
automatic decisions without their images (``POST .../edge-decisions/``).
"""

from __future__ import annotations

import json
import logging

import httpx

logger = logging.getLogger(__name__)


class ServerError(Exception):
    """The server refused a request; the message carries its status and answer."""


class ServerClient:
    """A small httpx client for one project of a Handoff server."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        project: str,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.project = project
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def _checked(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            raise ServerError(f"{response.request.url}: {response.status_code} {response.text}")
        return response.json()

    def item_send(self, *, data: bytes, filename: str, key: str, source: dict) -> dict:
        """Upload one image for people to see; the server predicts and routes it itself."""
        response = self.http.post(
            f"/api/v1/projects/{self.project}/items/",
            data={"key": key, "source": json.dumps(source)},
            files={"file": (filename, data)},
        )
        return self._checked(response)

    def decisions_report(self, *, decisions: list[dict]) -> list[dict]:
        """Report automatic decisions (no images); one result per decision, in order."""
        response = self.http.post(
            f"/api/v1/projects/{self.project}/edge-decisions/", json={"decisions": decisions}
        )
        return self._checked(response)["results"]

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()
