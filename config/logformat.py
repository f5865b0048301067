"""JSON log lines (``LOG_FORMAT=json``), with the standard library only.

Handoff logs events as ``"<event.name> key=value key=value"``; this formatter turns that into
``{"ts", "level", "logger", "event", "message", <key>: <value>, ...}``, one object per line, so
a log shipper can index events and fields without parsing free text.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_EVENT = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
_FIELD = re.compile(r"^([a-z][a-z0-9_]*)=(\S*)$")
_RESERVED = {"ts", "level", "logger", "event", "message", "exception"}


def _fields(message: str) -> dict[str, str]:
    """The event name and key=value pairs of a message in the house log style."""
    head, _, rest = message.partition(" ")
    if not _EVENT.match(head):
        return {}
    out = {"event": head}
    for token in rest.split():
        match = _FIELD.match(token)
        if match and match.group(1) not in _RESERVED:
            out[match.group(1)] = match.group(2)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a single JSON line."""
        message = record.getMessage()
        payload = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            **_fields(message),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
