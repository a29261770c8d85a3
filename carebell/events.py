"""Events for the source system's webhook feed (SPEC §9): the one module that
writes OutboundEvent rows. Every emitter — a cancellation by text or call, a
confirmation — calls `emit`."""

from __future__ import annotations

import datetime as dt

from carebell.messaging.models import OutboundEvent
from carebell.sites.models import Site


def emit(site: Site, event_type: str, payload: dict, now: dt.datetime) -> None:
    """Queue an event for the source system's webhook feed, in the caller's
    transaction (so it exists only if its cause was committed)."""
    OutboundEvent.objects.create(site=site, event_type=event_type, payload=payload, created_at=now)
