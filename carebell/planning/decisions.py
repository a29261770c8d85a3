"""A planning decision: one message that would go, or one that would not, and why."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from carebell.core.reasons import Reason


@dataclass(slots=True)
class Decision:
    status: str  # "planned" | "skipped"
    kind: str
    channel: str
    site_id: int
    patient_id: int | None
    contact_id: int | None
    contact_point_id: int | None
    to: str
    entity_type: str
    entity_id: int | None
    event_at: dt.datetime | None
    planned_at: dt.datetime | None
    reasons: tuple[Reason, ...] = ()
    rule_id: int | None = None
    language: str = "en"
    entity_name: str = ""
    entity_ids: list[int] = field(default_factory=list)
    dedupe_key: str = ""
    priority: int = 5
    not_after: dt.datetime | None = None
    #: The recipient's own time zone when known (their calendar counts for the caps).
    zone: ZoneInfo | None = None

    @property
    def planned(self) -> bool:
        return self.status == "planned"


def dedupe_key(text: str) -> str:
    """The occurrence key as stored (at most 200 characters): what makes re-planning
    the same rule, subject, time and contact point create nothing new."""
    if len(text) <= 200:
        return text
    return "h:" + hashlib.sha256(text.encode()).hexdigest()


def masked(address: str) -> str:
    """An address shown in plans and logs without revealing it: +1555****0123,
    j***@example.org."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(address) <= 8:
        return "****"
    return f"{address[:5]}****{address[-4:]}"
