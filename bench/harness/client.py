"""A plain HTTP/1.1 client for the running site: a cookie jar (session + CSRF), an optional API
token, and optionally one keep-alive connection, as a browser or a camera would hold."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
import uuid

# gunicorn closes a keep-alive connection idle for 2 s (its default); a client idle for longer
# opens a new one rather than find out by a failed request.
KEEPALIVE_IDLE_S = 1.5

Response = tuple[int, bytes, dict[str, str]]


class Http:
    """One client of 127.0.0.1:port; `token` (a Bearer API token) is sent when set."""

    def __init__(
        self, port: int, *, token: str = "", keep_alive: bool = False, timeout: float = 60
    ) -> None:
        self.port, self.token, self.keep_alive, self.timeout = port, token, keep_alive, timeout
        self.cookies: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def _connection(self) -> http.client.HTTPConnection:
        if not self.keep_alive:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        elif time.monotonic() - self._last_used > KEEPALIVE_IDLE_S:
            self._conn.close()  # the next request opens a fresh connection
        return self._conn

    def request(self, method: str, path: str, body: bytes | None = None, headers=None) -> Response:
        """One request; returns (status, payload, response headers) and keeps the cookies."""
        conn = self._connection()
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            if not self.keep_alive:
                conn.close()
        self._last_used = time.monotonic()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, payload, dict(response.getheaders())

    def _form_headers(self) -> dict:
        return {
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
            "Referer": f"http://127.0.0.1:{self.port}/",
        }

    def post_form(self, path: str, fields: dict) -> Response:
        """POST url-encoded fields with the CSRF token, as the desk's JavaScript does."""
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._form_headers()}
        return self.request("POST", path, urllib.parse.urlencode(fields).encode(), headers)

    def post_files(self, path: str, field_name: str, files: list[tuple[str, bytes]], **fields):
        """POST files (multipart); signed-in sessions send the CSRF token too."""
        if not self.token:
            fields.setdefault("csrfmiddlewaretoken", self.cookies.get("csrftoken", ""))
        body, content_type = multipart(field_name, files, fields)
        headers = {"Content-Type": content_type}
        if not self.token:
            headers.update(self._form_headers())
        return self.request("POST", path, body, headers)

    def log_in(self, username: str, password: str) -> None:
        """Sign in through the login form (raises when refused)."""
        self.request("GET", "/accounts/login/")
        status, _, _ = self.post_form(
            "/accounts/login/", {"username": username, "password": password}
        )
        if status != 302:
            raise RuntimeError(f"login failed for {username}: HTTP {status}")

    def submit(self, slug: str, data: bytes, *, key: str = "", name: str = "image.png"):
        """POST one image to the API; returns (status, parsed JSON or raw bytes)."""
        fields = {"key": key} if key else {}
        status, payload, _ = self.post_files(
            f"/api/v1/projects/{slug}/items/", "file", [(name, data)], **fields
        )
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload


def multipart(field_name: str, files: list[tuple[str, bytes]], fields: dict):
    """A multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            .encode()
        )  # fmt: skip
    for filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
