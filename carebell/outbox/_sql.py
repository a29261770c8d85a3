"""The dispatcher's set-based statements: lock, lease, start, attempts, outcomes; and
the one that queues a single message (a status report's are in `_report`).

Private to the outbox (its verbs call `backend()`); one implementation per database
behind the same small interface. On PostgreSQL each step is one statement whose
rows travel as one array per column spread by unnest(); SQLite (the demo, one
writer) runs the same steps with executemany. Measured from Python
(../shared/MEASURED.md): Django's bulk_create ~13k rows/s, executemany ~60k; one
set-based statement several times that, and it keeps PostgreSQL's own CPU per row
low too.

Each UPDATE … FROM unnest() also names its rows with `id = ANY(ids)`, so PostgreSQL
finds them by primary key whatever it guesses of the join (one misestimate made a
500 × 500 nested loop: 0.3 ms of server CPU per message).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from django.db import connection

from carebell.core.vocab import AttemptStatus, OutboxStatus, can_move
from carebell.messaging.models import DeliveryAttempt, MessageEvent, OutboxMessage
from carebell.prepared import execute_prepared
from carebell.sql import bools, ints, texts, utc_params

OUTBOX = OutboxMessage._meta.db_table
ATTEMPTS = DeliveryAttempt._meta.db_table
EVENTS = MessageEvent._meta.db_table
#: What a worker claims: rows that may move to `sending` (by `can_move`), and those
#: already there (a retry, an attempt to settle). Our own enum values, never input.
DUE_STATUSES = ", ".join(
    f"'{s}'" for s in OutboxStatus if s is OutboxStatus.SENDING or can_move(s, OutboxStatus.SENDING)
)


class Started(NamedTuple):
    """A message about to be sent: its next attempt number and rendered text."""

    id: int
    attempts: int
    subject: str
    body: str
    html_body: str
    segments: int


class AttemptRow(NamedTuple):
    """An attempt about to be saved; `idempotency_key` is 128 random bits."""

    message_id: int
    number: int
    provider: str
    idempotency_key: str


class NewAttempt(NamedTuple):
    """An attempt row just saved (what sending and recording need of it)."""

    id: int
    message_id: int
    provider: str
    idempotency_key: str
    number: int
    started_at: dt.datetime


class AttemptResult(NamedTuple):
    """An attempt's result; `finished` false for one whose outcome is still unknown
    (its finished_at stays empty until it is settled)."""

    id: int
    provider_message_id: str
    status: str
    error_code: str
    error_message: str
    permanent: bool
    finished: bool


class Outcome(NamedTuple):
    """What becomes of one message, and the event that says so. None means "leave
    the column as it is"; `sent_now`/`finished_now` set that time to the batch's."""

    id: int
    status: str
    provider: str
    provider_message_id: str | None
    sent_now: bool
    finished_now: bool
    due_at: dt.datetime | None
    error_code: str
    error_message: str | None
    reasons: str | None  # JSON, the row's whole new list
    event_status: str
    event_reasons: str  # JSON
    event_note: str


def _attempt_rows(rows: Iterable[tuple[int, int, str]]) -> list[AttemptRow]:
    # 128 random bits as 32 hex digits, like uuid4().hex, at a fifth of the cost.
    return [AttemptRow(i, n, provider, os.urandom(16).hex()) for i, n, provider in rows]


def _new_attempts(rows: list[AttemptRow], saved: dict[int, int], started_at) -> dict:
    return {
        r.message_id: NewAttempt(
            saved[r.message_id], r.message_id, r.provider, r.idempotency_key, r.number, started_at
        )
        for r in rows
        if r.message_id in saved
    }


def _lease(ids: list[int], token: dt.datetime, now: dt.datetime) -> None:
    marks = ", ".join(["%s"] * len(ids))
    sql = f"""UPDATE {OUTBOX} SET due_at = %s, lease_expires_at = %s, updated_at = %s
        WHERE id IN ({marks})"""
    with connection.cursor() as cursor:
        # Raw: SQLite compares times as text in the form written.
        cursor.execute(sql, utc_params([token, token, now, *ids]))


class Postgres:
    """PostgreSQL: SKIP LOCKED claims, one statement per step over unnest()ed arrays."""

    def lock_due(self, now: dt.datetime, limit: int) -> list[int]:
        # FOR UPDATE SKIP LOCKED: concurrent workers take disjoint rows without waiting.
        sql = f"""SELECT id FROM {OUTBOX}
            WHERE status IN ({DUE_STATUSES}) AND due_at <= %s
            ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED"""
        with connection.cursor() as cursor:
            cursor.execute(sql, utc_params([now, limit]))
            return [row[0] for row in cursor.fetchall()]

    lease = staticmethod(_lease)

    def start_sending(self, rows: list[Started], due_at, now, token) -> set[int]:
        spread, arrays = _unnest(
            "id bigint, attempts int, subject text, body text, html_body text, segments int", rows
        )
        # A token: still leased by us and `sending`. Without, the caller holds the
        # locks of rows `lock_due` found in DUE_STATUSES.
        where = "AND o.lease_expires_at = %s AND o.status = 'sending'" if token else ""
        sql = f"""UPDATE {OUTBOX} AS o SET status = 'sending', attempts = v.attempts,
                due_at = %s, lease_expires_at = %s, updated_at = %s, subject = v.subject,
                body = v.body, html_body = v.html_body, segments = v.segments
            FROM {spread} WHERE o.id = v.id AND o.id = ANY(%s::bigint[]) {where}
            RETURNING o.id"""
        params = [due_at, due_at, now, *arrays, arrays[0], *([token] if token else [])]
        with connection.cursor() as cursor:
            cursor.execute(sql, utc_params(params))
            return {row[0] for row in cursor.fetchall()}

    def insert_attempts(self, rows: Iterable[tuple[int, int, str]], started_at) -> dict:
        attempts = _attempt_rows(rows)
        if not attempts:
            return {}
        spread, arrays = _unnest(
            "message_id bigint, number int, provider text, idempotency_key text", attempts
        )
        sql = f"""INSERT INTO {ATTEMPTS} (message_id, number, provider, idempotency_key,
                started_at, provider_message_id, status, error_code, error_message, permanent)
            SELECT v.message_id, v.number, v.provider, v.idempotency_key, %s, '',
                '{AttemptStatus.STARTED}', '', '', false
            FROM {spread} ON CONFLICT DO NOTHING RETURNING id, message_id"""
        with connection.cursor() as cursor:
            cursor.execute(sql, utc_params([started_at, *arrays]))
            saved = {message_id: id_ for id_, message_id in cursor.fetchall()}
        return _new_attempts(attempts, saved, started_at)

    def record_outcomes(self, now, attempts: Sequence[AttemptResult], outcomes) -> set[int]:
        with connection.cursor() as cursor:
            if attempts:
                self._finish_attempts(cursor, now, attempts)
            if not outcomes:
                return set()
            # Which are still `sending`, locked so that stays true until the commit. A
            # separate step: as a condition of the UPDATE, PostgreSQL's estimate for
            # it (few rows are ever `sending`) chose a 500 × 500 nested loop.
            cursor.execute(
                f"SELECT id FROM {OUTBOX} WHERE id = ANY(%s::bigint[]) AND status = 'sending' "
                "FOR NO KEY UPDATE",
                [ints(o.id for o in outcomes)],
            )
            moved = {row[0] for row in cursor.fetchall()}
            rows = [o for o in outcomes if o.id in moved]
            if rows:
                self._move(cursor, now, rows)
        return moved

    @staticmethod
    def _finish_attempts(cursor, now, attempts: Sequence[AttemptResult]) -> None:
        spread, arrays = _unnest(_ATTEMPT_RESULT, attempts)
        cursor.execute(
            f"""UPDATE {ATTEMPTS} AS a
            SET finished_at = CASE WHEN v.finished THEN %s::timestamptz END,
                provider_message_id = v.provider_message_id, status = v.status,
                error_code = v.error_code, error_message = v.error_message,
                permanent = v.permanent
            FROM {spread} WHERE a.id = v.id AND a.id = ANY(%s::bigint[])
                AND (v.finished OR a.finished_at IS NULL)""",
            utc_params([now, *arrays, arrays[0]]),
        )

    @staticmethod
    def _move(cursor, now, rows: Sequence[Outcome]) -> None:
        spread, arrays = _unnest(_OUTCOME, rows)
        cursor.execute(
            f"""WITH moved AS (
                UPDATE {OUTBOX} AS o SET status = v.status, provider = v.provider,
                    provider_message_id = COALESCE(v.provider_message_id, o.provider_message_id),
                    sent_at = CASE WHEN v.sent_now THEN %s ELSE o.sent_at END,
                    finished_at = CASE WHEN v.finished_now THEN %s ELSE o.finished_at END,
                    due_at = COALESCE(v.due_at, o.due_at), error_code = v.error_code,
                    error_message = COALESCE(v.error_message, o.error_message),
                    reasons = COALESCE(v.reasons::jsonb, o.reasons),
                    updated_at = %s, lease_expires_at = NULL
                FROM {spread} WHERE o.id = v.id AND o.id = ANY(%s::bigint[])
                RETURNING o.id, v.event_status, v.event_reasons, v.event_note
            )
            INSERT INTO {EVENTS} (message_id, at, status, reasons, note)
            SELECT id, %s, event_status, event_reasons::jsonb, event_note FROM moved""",
            utc_params([now, now, now, *arrays, arrays[0], now]),
        )

    def insert_queued(self, columns: str, values: list, now, status: str) -> int:
        """`_QUEUED` and its event in one statement; the new message's id. Prepared
        (carebell.prepared), as an inbound text's own statements are: PostgreSQL plans
        this INSERT of every column once per connection, not for every reply."""
        sql = f"""WITH m AS ({_queued_sql(columns, len(values))})
            INSERT INTO {EVENTS} (message_id, at, status, reasons, note)
            SELECT id, %s, %s, '[]', '' FROM m RETURNING message_id"""
        with execute_prepared(sql, [*values, *utc_params([now]), status]) as cursor:
            return cursor.fetchone()[0]


class SQLite:
    """SQLite: the transaction holds the database's one write lock (IMMEDIATE), so a
    plain SELECT claims and nothing changes the rows before we write; executemany."""

    def lock_due(self, now: dt.datetime, limit: int) -> list[int]:
        sql = f"""SELECT id FROM {OUTBOX}
            WHERE status IN ({DUE_STATUSES}) AND due_at <= %s ORDER BY due_at LIMIT %s"""
        with connection.cursor() as cursor:
            cursor.execute(sql, utc_params([now, limit]))
            return [row[0] for row in cursor.fetchall()]

    lease = staticmethod(_lease)

    def start_sending(self, rows: list[Started], due_at, now, token) -> set[int]:
        ids = [r.id for r in rows]
        ours = set(ids)
        if token:
            ours = _ids_still(ids, "lease_expires_at", token) & _ids_still(ids, "status", "sending")
        sql = f"""UPDATE {OUTBOX} SET status = 'sending', attempts = %s, due_at = %s,
            lease_expires_at = %s, updated_at = %s, subject = %s, body = %s, html_body = %s,
            segments = %s WHERE id = %s"""
        with connection.cursor() as cursor:
            cursor.executemany(
                sql,
                [
                    utc_params(
                        (
                            r.attempts,
                            due_at,
                            due_at,
                            now,
                            r.subject,
                            r.body,
                            r.html_body,
                            r.segments,
                            r.id,
                        )
                    )
                    for r in rows
                    if r.id in ours
                ],
            )
        return ours

    def insert_attempts(self, rows: Iterable[tuple[int, int, str]], started_at) -> dict:
        attempts = _attempt_rows(rows)
        models = [
            DeliveryAttempt(
                message_id=r.message_id,
                number=r.number,
                provider=r.provider,
                idempotency_key=r.idempotency_key,
                started_at=started_at,
            )
            for r in attempts
        ]
        DeliveryAttempt.objects.bulk_create(models)
        return _new_attempts(attempts, {a.message_id: a.id for a in models}, started_at)

    def record_outcomes(self, now, attempts: Sequence[AttemptResult], outcomes) -> set[int]:
        moved = _ids_still([o.id for o in outcomes], "status", "sending")
        with connection.cursor() as cursor:
            cursor.executemany(
                f"""UPDATE {ATTEMPTS} SET finished_at = CASE WHEN %s THEN %s END,
                    provider_message_id = %s, status = %s, error_code = %s,
                    error_message = %s, permanent = %s
                WHERE id = %s AND (%s OR finished_at IS NULL)""",
                [
                    utc_params(
                        (
                            a.finished,
                            now,
                            a.provider_message_id,
                            a.status,
                            a.error_code,
                            a.error_message,
                            a.permanent,
                            a.id,
                            a.finished,
                        )
                    )
                    for a in attempts
                ],
            )
            cursor.executemany(
                f"""UPDATE {OUTBOX} SET status = %s, provider = %s,
                    provider_message_id = COALESCE(%s, provider_message_id),
                    sent_at = CASE WHEN %s THEN %s ELSE sent_at END,
                    finished_at = CASE WHEN %s THEN %s ELSE finished_at END,
                    due_at = COALESCE(%s, due_at), error_code = %s,
                    error_message = COALESCE(%s, error_message), reasons = COALESCE(%s, reasons),
                    updated_at = %s, lease_expires_at = NULL
                WHERE id = %s""",
                [
                    utc_params(
                        (
                            o.status,
                            o.provider,
                            o.provider_message_id,
                            o.sent_now,
                            now,
                            o.finished_now,
                            now,
                            o.due_at,
                            o.error_code,
                            o.error_message,
                            o.reasons,
                            now,
                            o.id,
                        )
                    )
                    for o in outcomes
                    if o.id in moved
                ],
            )
            cursor.executemany(
                f"INSERT INTO {EVENTS} (message_id, at, status, reasons, note) "
                "VALUES (%s, %s, %s, %s, %s)",
                [
                    utc_params((o.id, now, o.event_status, o.event_reasons, o.event_note))
                    for o in outcomes
                    if o.id in moved
                ],
            )
        return moved

    def insert_queued(self, columns: str, values: list, now, status: str) -> int:
        """`_QUEUED`, then its event; the new message's id."""
        with connection.cursor() as cursor:
            cursor.execute(_queued_sql(columns, len(values)), values)
            message_id = cursor.fetchone()[0]
            cursor.execute(
                f"INSERT INTO {EVENTS} (message_id, at, status, reasons, note) "
                "VALUES (%s, %s, %s, '[]', '')",
                utc_params([message_id, now, status]),
            )
        return message_id


_BACKENDS = {"postgresql": Postgres(), "sqlite": SQLite()}


def backend() -> Postgres | SQLite:
    """The statements for the database in use."""
    return _BACKENDS[connection.vendor]


# --- helpers -------------------------------------------------------------------------

_ATTEMPT_RESULT = (
    "id bigint, provider_message_id text, status text, error_code text, error_message text, "
    "permanent boolean, finished boolean"
)
_OUTCOME = (
    "id bigint, status text, provider text, provider_message_id text, sent_now boolean, "
    "finished_now boolean, due_at timestamptz, error_code text, error_message text, "
    "reasons text, event_status text, event_reasons text, event_note text"
)
_ARRAY_TEXT = {"bigint": ints, "int": ints, "boolean": bools}


def _unnest(columns: str, rows: Sequence[Sequence]) -> tuple[str, list[str]]:
    """`unnest(%s::type[], …) AS v(name, …)` for `columns` ("name type, …") and its
    parameters: the rows turned into one array (as text) per column."""
    pairs = [column.split() for column in columns.split(",")]
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in pairs)
    names = ", ".join(name for name, _ in pairs)
    values = list(zip(*rows, strict=True)) or [() for _ in pairs]
    params = [
        _ARRAY_TEXT.get(kind, texts)(column)
        for (_, kind), column in zip(pairs, values, strict=True)
    ]
    return f"unnest({arrays}) AS v({names})", params


def _ids_still(ids: Iterable[int], condition: str, value) -> set[int]:
    """SQLite: which of `ids` still match `condition` (the transaction holds the
    database's one write lock, so nothing changes them before we write). Raw SQL,
    so a time compares in the text form the claim wrote it in."""
    ids = list(ids)
    marks = ", ".join(["%s"] * len(ids))
    sql = f"SELECT id FROM {OUTBOX} WHERE id IN ({marks}) AND {condition} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, utc_params([*ids, value]))
        return {row[0] for row in cursor.fetchall()}


# --- a single message queued to go at once (a reply, a code, a staff email) ----------


def queued_row(values: Mapping[str, Any]) -> tuple[str, list]:
    """The columns and parameters to insert a new message: `values` by field attname,
    each bound as the ORM binds it (a time in UTC, JSON adapted), every other field
    its default, prepared once per database (the ORM prepares all of them for every
    row: for an inbound HELP's answer, more CPU than the rest of queueing it)."""
    params = list(_queued_defaults(connection.vendor))
    times: dict = {}  # a message's times are mostly one instant: prepared once
    for name, value in values.items():
        place, field, plain = _QUEUED_PLACES[name]
        if value is None or (plain is not None and isinstance(value, plain)):
            params[place] = value  # what the field's preparing gives back for these
        elif field.get_internal_type() == "DateTimeField":
            params[place] = times.get(value) or times.setdefault(
                value, field.get_db_prep_save(value, connection)
            )
        else:
            params[place] = field.get_db_prep_save(value, connection)
    return _QUEUED_COLUMNS, params


def queued_message(message_id: int, values: Mapping[str, Any]) -> OutboxMessage:
    """The message `queued_row(values)` stored under `message_id`, as the ORM would
    read it back (every other field its default)."""
    row = [message_id]
    for name, default in _PYTHON_DEFAULTS:
        row.append(values[name] if name in values else default())
    return OutboxMessage.from_db(connection.alias, _QUEUED_ATTNAMES, row)


_QUEUED_FIELDS = [f for f in OutboxMessage._meta.concrete_fields if not f.primary_key]
_QUEUED_COLUMNS = ", ".join(f.column for f in _QUEUED_FIELDS)
#: The Python types a field's preparing hands back unchanged (a str, enums of str
#: included, for text; an int for a number or a key): bound as they are.
_PLAIN = {
    "CharField": str, "TextField": str, "ForeignKey": int, "SmallIntegerField": int,
    "PositiveSmallIntegerField": int, "IntegerField": int, "BigIntegerField": int,
}  # fmt: skip
_QUEUED_PLACES = {
    f.attname: (place, f, _PLAIN.get(f.get_internal_type()))
    for place, f in enumerate(_QUEUED_FIELDS)
}
#: from_db takes the values in the model's field order: the primary key first.
_QUEUED_ATTNAMES = [OutboxMessage._meta.pk.attname, *(f.attname for f in _QUEUED_FIELDS)]
#: Each field's default as a fresh value (a new list for a JSON list).
_PYTHON_DEFAULTS = [(f.attname, f.get_default) for f in _QUEUED_FIELDS]
_DEFAULTS: dict[str, tuple] = {}


def _queued_defaults(vendor: str) -> tuple:
    # Every default is a constant or an empty list (JSON), never changed once prepared.
    defaults = _DEFAULTS.get(vendor)
    if defaults is None:
        defaults = _DEFAULTS[vendor] = tuple(
            f.get_db_prep_save(f.get_default(), connection) for f in _QUEUED_FIELDS
        )
    return defaults


#: Each column's type, as its parameter is cast in `queued_clauses`: text for any
#: text (a cast to varchar(n) would cut a value the column must refuse).
_CASTS = {
    "CharField": "text", "TextField": "text", "ForeignKey": "bigint", "BigIntegerField": "bigint",
    "SmallIntegerField": "smallint", "PositiveSmallIntegerField": "smallint",
    "IntegerField": "integer", "JSONField": "jsonb", "DateTimeField": "timestamptz",
    "BooleanField": "boolean",
}  # fmt: skip
_QUEUED_CASTS = ", ".join(f"%s::{_CASTS[f.get_internal_type()]}" for f in _QUEUED_FIELDS)


def queued_clauses(after: str, params: list) -> tuple[str, list]:
    """PostgreSQL: a new message (`queued_row`'s parameters) and its event as WITH
    clauses (`queued`, `queued_event`) that write them once for the row of the WITH
    clause `after` and not at all when it has none: a message that goes in one
    statement with its cause, or not at all. The event's time and status are the
    message's own (created now, queued), read back from its row rather than passed
    again: with the text's own dozen, two more parameters took a HELP past the 50
    that psycopg keeps a statement's parsing for, and it parsed it anew each time."""
    sql = f"""queued AS (INSERT INTO {OUTBOX} ({_QUEUED_COLUMNS})
            SELECT {_QUEUED_CASTS} FROM {after} RETURNING id, created_at, status),
        queued_event AS (INSERT INTO {EVENTS} (message_id, at, status, reasons, note)
            SELECT id, created_at, status, '[]', '' FROM queued)"""
    return sql, list(params)


def _queued_sql(columns: str, count: int) -> str:
    marks = ", ".join(["%s"] * count)
    return f"INSERT INTO {OUTBOX} ({columns}) VALUES ({marks}) RETURNING id"
