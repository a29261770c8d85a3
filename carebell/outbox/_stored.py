"""How reasons are stored on outbox rows and events: JSON, code plus parameters."""

from __future__ import annotations

from collections.abc import Iterable

from carebell.core.reasons import Reason


def reasons_json(reasons: Iterable[Reason]) -> list[dict]:
    """Reasons as stored on outbox rows and events: code plus parameters."""
    return [{"code": r.code.value, **{k: r.param(k) for k, _ in r.params}} for r in reasons]
