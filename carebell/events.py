"""Events for the source system's webhook feed (SPEC §9): the one module that
writes OutboundEvent rows. Every emitter — a confirmation or cancellation by text,
call or link, an opt-out or opt-in, a consent record, a provider's delivery report,
an inbound text staff must read — calls `emit`.

`emit` is one INSERT in the caller's transaction, so an event exists only if its
cause was committed, and a hot path (a provider's status callback) pays no more.
The events worker (carebell.outbound) later hands each event to the endpoints of
its site that subscribe to its type, and marks it handed on in
OutboundEvent.delivered_at; the per-endpoint delivery state is its own.

Payloads are thin: ids and types, enough for the source system to look the rest
up, never a patient's name, number or words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from carebell.messaging.models import OutboundEvent
from carebell.sites.models import Site


def emit(site: Site | int, event_type: str, payload: dict, now: dt.datetime) -> None:
    """Queue an event for the source system's webhook feed, in the caller's
    transaction (so it exists only if its cause was committed). `site` is a Site or
    its id."""
    site_id = site if isinstance(site, int) else site.pk
    OutboundEvent.objects.create(
        site_id=site_id, event_type=event_type, payload=payload, created_at=now
    )


def insert_sql(rows: str) -> str:
    """`emit`'s INSERT for the rows of the query `rows` (columns site_id, event_type,
    payload as jsonb, created_at), for one statement that writes an event with its
    cause (a status report's, on PostgreSQL: `carebell.outbox._report`)."""
    return f"""INSERT INTO {_TABLE} (site_id, event_type, payload, created_at, delivered_at,
        attempts) SELECT site_id, event_type, payload, created_at, NULL, 0 FROM ({rows}) AS e"""


_TABLE = OutboundEvent._meta.db_table


def emit_many(rows: Iterable[tuple[int, str, dict]], now: dt.datetime) -> None:
    """`emit` for many events at once: (site id, event type, payload) each."""
    OutboundEvent.objects.bulk_create(
        [OutboundEvent(site_id=s, event_type=t, payload=p, created_at=now) for s, t, p in rows]
    )


def appointment_data(appointment, **extra) -> dict:
    """The payload of an appointment event: the appointment as the source system
    knows it (its source and id there) and carebell's ids."""
    return {
        "appointment": {
            "id": appointment.pk,
            "source": appointment.source,
            "external_id": appointment.external_id,
        },
        "patient": {"id": appointment.patient_id},
        **extra,
    }
