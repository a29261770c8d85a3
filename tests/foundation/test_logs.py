"""Log lines carry ids and code locations, never an exception's message."""

from __future__ import annotations

import json
import logging
import sys

from carebell.logs import StructuredFormatter


def test_an_error_is_logged_with_its_type_and_place_but_not_its_message():
    try:
        raise ValueError("Jane Doe +12025550123")
    except ValueError:
        record = logging.LogRecord(
            "carebell.x", logging.ERROR, __file__, 1, "outbox.failed", (), sys.exc_info()
        )
    record.ids = {"message_id": 7}
    line = json.loads(StructuredFormatter().format(record))
    assert line["event"] == "outbox.failed" and line["message_id"] == 7
    assert line["error"] == "ValueError"
    assert "test_logs.py" in line["where"][-1]
    assert "Jane" not in json.dumps(line) and "555" not in json.dumps(line)
