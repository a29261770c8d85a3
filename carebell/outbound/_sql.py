"""The events worker's statements: hand events on, claim due deliveries, record.

Private to carebell.outbound. PostgreSQL claims with FOR UPDATE SKIP LOCKED, so
several workers take disjoint rows without waiting; SQLite (the demo, one writer)
holds the database's one write lock for the transaction (IMMEDIATE), so a plain
SELECT claims. Each endpoint is claimed from separately, up to the room it has
(its cap less what is in flight), so a backlog at one endpoint never takes the
others' turn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from django.db import connection

from carebell.core.vocab import OutboxStatus
from carebell.messaging.models import PENDING, OutboundEvent, OutboxMessage
from carebell.outbound.models import DeliveryAttemptLog, EventDelivery, WebhookEndpoint
from carebell.sql import fast_timestamps, ints, texts, utc_params

DELIVERIES = EventDelivery._meta.db_table
ENDPOINTS = WebhookEndpoint._meta.db_table
LOG = DeliveryAttemptLog._meta.db_table
EVENTS = OutboundEvent._meta.db_table
OUTBOX = OutboxMessage._meta.db_table
#: The statuses of the outbox's `outbox_due` index, the dispatcher's claim: the same
#: list, so the question below is answered from that index.
_PATIENTS_DUE = ", ".join(f"'{s}'" for s in (*PENDING, OutboxStatus.SENDING.value))


class Claimed(NamedTuple):
    """A delivery this worker holds until `token` (its lease's end), with what its
    body is made of."""

    id: int
    endpoint_id: int
    event_id: int
    message_id: str
    attempts: int
    retry_from: dt.datetime
    was_delivering: bool  # its last worker stopped before recording an answer
    event_type: str
    payload: str  # the event's data as JSON text, as stored: never decoded here
    happened_at: dt.datetime  # the event's created_at


class Recorded(NamedTuple):
    """A delivery's new state after an attempt."""

    id: int
    status: str
    due_at: dt.datetime
    finished_at: dt.datetime | None
    last_status_code: int | None
    last_error: str
    token: dt.datetime  # the lease it was claimed under


def patients_waiting(now: dt.datetime) -> bool:
    """Whether a patient's message is due and not yet taken by a dispatcher (read
    only: the outbox has one writer, and it is not this module)."""
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM {OUTBOX} WHERE status IN ({_PATIENTS_DUE}) AND due_at <= %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, utc_params([now]))
        return bool(cursor.fetchone()[0])


def lock_unhanded_events(limit: int) -> list[tuple[int, int, str, dt.datetime]]:
    """Lock up to `limit` events not yet handed to their endpoints, oldest first:
    (id, site_id, event_type, created_at)."""
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = f"""SELECT id, site_id, event_type, created_at FROM {EVENTS}
        WHERE delivered_at IS NULL ORDER BY delivered_at, created_at LIMIT %s{lock}"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        rows = cursor.fetchall()
    return [(i, s, t, _aware(c)) for i, s, t, c in rows]


def fan_out_postgres(now: dt.datetime, limit: int) -> int:
    """`delivery.fan_out` in one statement: lock up to `limit` events not handed on,
    insert a delivery per subscribed endpoint (enabled, of the event's site, there
    when it happened), mark the events handed on. Returns how many events."""
    sql = f"""WITH picked AS (
            SELECT id, site_id, event_type, created_at FROM {EVENTS}
            WHERE delivered_at IS NULL ORDER BY delivered_at, created_at LIMIT %s
            FOR UPDATE SKIP LOCKED
        ), handed AS (
            INSERT INTO {DELIVERIES} (endpoint_id, event_id, message_id, status, due_at,
                attempts, created_at, retry_from, last_error)
            SELECT e.id, p.id, 'msg_' || replace(gen_random_uuid()::text, '-', ''),
                'pending', %s, 0, %s, %s, ''
            FROM picked AS p JOIN {ENDPOINTS} AS e ON e.site_id = p.site_id AND e.enabled
                AND e.event_types ? p.event_type AND e.created_at <= p.created_at
            ON CONFLICT DO NOTHING
        )
        UPDATE {EVENTS} AS o SET delivered_at = %s FROM picked WHERE o.id = picked.id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, utc_params([limit, now, now, now, now]))
        return cursor.rowcount


def claim(rooms: dict[int, int], now: dt.datetime, token: dt.datetime) -> list[Claimed]:
    """Lease the due deliveries of each endpoint, up to its room, until `token`."""
    rooms = {e: r for e, r in rooms.items() if r > 0}
    if not rooms:
        return []
    if connection.vendor == "postgresql":
        return _claim_postgres(rooms, now, token)
    return _claim_sqlite(rooms, now, token)


_DUE = "status IN ('pending', 'delivering') AND due_at <= %s"
_RETURNED = "d.id, d.endpoint_id, d.event_id, d.message_id, d.attempts, d.retry_from"


def _claim_postgres(rooms, now, token) -> list[Claimed]:
    # The event's columns come back with the claim (no second query), its payload as
    # the text PostgreSQL keeps: it goes into the body as it is, never decoded and
    # encoded again in Python.
    sql = f"""WITH picked AS (
            SELECT d.id, d.status FROM unnest(%s::bigint[], %s::int[]) AS r(endpoint_id, room)
            CROSS JOIN LATERAL (
                SELECT id, status FROM {DELIVERIES}
                WHERE endpoint_id = r.endpoint_id AND {_DUE}
                ORDER BY due_at LIMIT r.room FOR UPDATE SKIP LOCKED
            ) AS d
        ), leased AS (
            UPDATE {DELIVERIES} AS o SET status = 'delivering', attempts = o.attempts + 1,
                due_at = %s
            FROM picked WHERE o.id = picked.id
            RETURNING o.id, o.endpoint_id, o.event_id, o.message_id, o.attempts, o.retry_from,
                picked.status = 'delivering' AS was_delivering
        )
        SELECT l.*, e.event_type, e.payload::text, e.created_at
        FROM leased AS l JOIN {EVENTS} AS e ON e.id = l.event_id"""
    params = [ints(rooms), ints(rooms.values()), now, token]
    with connection.cursor() as cursor:
        fast_timestamps(cursor)
        cursor.execute(sql, utc_params(params))
        return sorted(Claimed(*row) for row in cursor.fetchall())


def _claim_sqlite(rooms, now, token) -> list[Claimed]:
    picked: list[tuple[int, bool]] = []
    with connection.cursor() as cursor:
        for endpoint_id, room in rooms.items():
            cursor.execute(
                f"SELECT id, status FROM {DELIVERIES} WHERE endpoint_id = %s AND {_DUE} "
                "ORDER BY due_at LIMIT %s",
                utc_params([endpoint_id, now, room]),
            )
            picked += [(i, status == "delivering") for i, status in cursor.fetchall()]
        if not picked:
            return []
        cursor.executemany(
            f"UPDATE {DELIVERIES} SET status = 'delivering', attempts = attempts + 1, "
            "due_at = %s WHERE id = %s",
            [utc_params([token, i]) for i, _ in picked],
        )
        was = dict(picked)
        marks = ", ".join(["%s"] * len(picked))
        cursor.execute(
            f"SELECT {_RETURNED}, e.event_type, e.payload, e.created_at FROM {DELIVERIES} AS d "
            f"JOIN {EVENTS} AS e ON e.id = d.event_id WHERE d.id IN ({marks})",
            list(was),
        )
        rows = cursor.fetchall()
    return sorted(
        Claimed(*row[:5], _aware(row[5]), was[row[0]], row[6], row[7], _aware(row[8]))
        for row in rows
    )


def record(rows: Sequence[Recorded]) -> None:
    """Store each delivery's new state, if it is still this worker's (its lease
    still carries its `token`: a worker whose lease ran out leaves the row to the
    one that claimed it since)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _record_postgres(rows)
        return
    sql = f"""UPDATE {DELIVERIES} SET status = %s, due_at = %s, finished_at = %s,
        last_status_code = %s, last_error = %s
        WHERE id = %s AND status = 'delivering' AND due_at = %s"""
    with connection.cursor() as cursor:
        cursor.executemany(
            sql,
            [
                utc_params(
                    [r.status, r.due_at, r.finished_at, r.last_status_code, r.last_error, r.id,
                     r.token]
                )
                for r in rows
            ],
        )  # fmt: skip


def _record_postgres(rows: Sequence[Recorded]) -> None:
    # One statement over arrays (one per column) rather than one per row: the
    # server's work per delivery, not just the round trips, is what it saves.
    sql = f"""UPDATE {DELIVERIES} AS d SET status = v.status, due_at = v.due_at,
            finished_at = v.finished_at, last_status_code = v.code, last_error = v.error
        FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[],
                    %s::int[], %s::text[], %s::timestamptz[])
            AS v(id, status, due_at, finished_at, code, error, token)
        WHERE d.id = v.id AND d.id = ANY(%s::bigint[]) AND d.status = 'delivering'
            AND d.due_at = v.token"""
    ids = ints(r.id for r in rows)
    params = [
        ids,
        texts(r.status for r in rows),
        texts(_utc(r.due_at) for r in rows),
        texts(_utc(r.finished_at) for r in rows),
        ints(r.last_status_code for r in rows),
        texts(r.last_error for r in rows),
        texts(_utc(r.token) for r in rows),
        ids,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


class Logged(NamedTuple):
    """One attempt for the delivery log."""

    delivery_id: int
    number: int
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None
    error: str
    outcome: str


def log_attempts(rows: Sequence[Logged]) -> None:
    """Append attempts to the delivery log, in one statement on PostgreSQL."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        sql = f"""INSERT INTO {LOG} (delivery_id, number, started_at, duration_ms, status_code,
            error, outcome) VALUES (%s, %s, %s, %s, %s, %s, %s)"""
        with connection.cursor() as cursor:
            cursor.executemany(sql, [utc_params(r) for r in rows])
        return
    sql = f"""INSERT INTO {LOG} (delivery_id, number, started_at, duration_ms, status_code,
            error, outcome)
        SELECT * FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[], %s::int[], %s::int[],
                             %s::text[], %s::text[])"""
    params = [
        ints(r.delivery_id for r in rows),
        ints(r.number for r in rows),
        texts(_utc(r.started_at) for r in rows),
        ints(r.duration_ms for r in rows),
        ints(r.status_code for r in rows),
        texts(r.error for r in rows),
        texts(r.outcome for r in rows),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC)


def _aware(value) -> dt.datetime:
    """A datetime read by a raw cursor: SQLite gives naive UTC text or datetimes."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
