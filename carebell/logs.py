"""Structured log lines: `event key=value …`, carrying ids and never patient data.

Callers pass identifiers as `extra={"ids": {...}}`; the formatter writes only those
and the message, which by convention is a fixed event name (`outbox.sent`), never a
sentence built from names, numbers or message bodies.
"""

from __future__ import annotations

import json
import logging
import traceback
from types import TracebackType


class StructuredFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        ids = getattr(record, "ids", None)
        if isinstance(ids, dict):
            fields.update({k: v for k, v in ids.items() if v is not None})
        if record.exc_info:
            # The exception's type and where it happened, not its message: messages
            # of database and provider errors can quote patient data.
            exc_type, _, tb = record.exc_info
            fields["error"] = exc_type.__name__ if exc_type else "unknown"
            fields["where"] = where(tb)
        return json.dumps(fields, default=str, separators=(",", ":"))


def where(tb: TracebackType | None) -> list[str]:
    """The traceback as file:line:function, innermost last — code locations only."""
    return [
        f"{frame.filename.rsplit('/site-packages/', 1)[-1]}:{frame.lineno}:{frame.name}"
        for frame in traceback.extract_tb(tb)
    ][-8:]
