"""Healthcheck for the web container: GET a probe path on the local gunicorn, exit 0 on 200.

Standard library only (no Django start-up every few seconds). It sends the first of
ALLOWED_HOSTS as the Host header, so Django's host check passes in production.
"""

import os
import sys
import urllib.request

path = sys.argv[1] if len(sys.argv) > 1 else "/readyz"
hosts = [h.strip().lstrip(".") for h in os.environ.get("ALLOWED_HOSTS", "").split(",")]
host = next((h for h in hosts if h and h != "*"), "localhost")
port = os.environ.get("PORT", "8000")
request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
try:
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - fixed local URL
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
    sys.stderr.write(f"probe {path} failed: {exc}\n")
    sys.exit(1)
