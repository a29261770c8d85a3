"""A provider's delivery report (`outbox.record_status`), beneath the outbox's verb.

A callback arrives per message and status, up to 1,500 a second, so its round trips
are its cost. On PostgreSQL the whole report is one statement in autocommit (a
data-modifying WITH: read the attempt, keep the report once, settle the attempt,
move the message, write its event and the source system's), prepared on the server
so that PostgreSQL plans it once per connection and shape; SQLite (the demo, one
writer) takes the same steps one statement each inside a transaction. Both are fed
by one description, `Report`: the status the attempt settles to, the statuses the
message may leave for the new one (by `core.vocab.can_move`, the caller's), and the
event the source system hears; the row the attempt is found by, the message's SET
clause and the event's payload are each written once below and used by both.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import NamedTuple

from django.db import connection, transaction

from carebell import events
from carebell.messaging.models import DeliveryAttempt, MessageEvent, OutboxMessage, ProviderEvent
from carebell.prepared import execute_prepared
from carebell.sql import utc, utc_params

OUTBOX = OutboxMessage._meta.db_table
ATTEMPTS = DeliveryAttempt._meta.db_table
EVENTS = MessageEvent._meta.db_table
PROVIDER_EVENTS = ProviderEvent._meta.db_table


class Effect(NamedTuple):
    """What a report of one status does, whatever the message (`outbox` works it out
    once per status from `core.vocab.can_move`)."""

    settles_as: str  # the attempt's status, when the report settles it
    moves_from: tuple[str, ...]  # the message's statuses it may leave for the new one
    sent: bool  # the message has been sent (its first sent_at is kept)
    final: bool  # the message is finished (and leaves its lease)
    event_type: str  # the source system's event when the message moves, or ""


class Report(NamedTuple):
    """A delivery report as `outbox.record_status` describes it to the database."""

    provider: str
    provider_message_id: str
    status: str
    attempt_id: int | None  # the callback URL's; None when it names none (or no row has it)
    error_code: str
    received_at: dt.datetime
    effect: Effect


class Moved(NamedTuple):
    """A message a report moved on: what its events and an opt-out need of it."""

    id: int
    site_id: int
    kind: str
    channel: str
    entity_type: str
    entity_id: int | None
    patient_id: int | None
    error_code: str
    to_address: str


class Recorded(NamedTuple):
    """What a report for a known attempt did. `kept` is false for a replay, which
    changed nothing (but fill in a provider id the attempt lacked)."""

    message_id: int
    kept: bool
    moved: Moved | None


#: A delivery report's payload for the source system (SPEC §9): ids and kinds, never
#: the address or the text. Each leaf names the outbox column it holds: one shape for
#: Python (`payload`) and for PostgreSQL's jsonb_build_object (`_payload_sql`).
PAYLOAD = {
    "message": {"id": "id", "kind": "kind", "channel": "channel"},
    "about": {"type": "entity_type", "id": "entity_id"},
    "patient": {"id": "patient_id"},
    "error_code": "error_code",
}


def payload(message, shape: dict = PAYLOAD) -> dict:
    """`shape` filled from `message` (an OutboxMessage, or a `Moved`)."""
    return {
        key: payload(message, leaf) if isinstance(leaf, dict) else getattr(message, leaf)
        for key, leaf in shape.items()
    }


@functools.cache
def _payload_sql(alias: str) -> str:
    """PAYLOAD as PostgreSQL builds it from the row `alias` (written once per alias:
    a callback's statement needs it every time)."""
    return _jsonb_object(alias, PAYLOAD)


def _jsonb_object(alias: str, shape: dict) -> str:
    pairs = ", ".join(
        f"'{key}', " + (_jsonb_object(alias, leaf) if isinstance(leaf, dict) else f"{alias}.{leaf}")
        for key, leaf in shape.items()
    )
    return f"jsonb_build_object({pairs})"


def record(report: Report) -> Recorded | None:
    """Apply `report`; None when carebell knows neither its attempt nor its id."""
    if connection.vendor == "postgresql":
        return _in_one_statement(report)
    with transaction.atomic():
        return _step_by_step(report)


_FOUND_COLUMNS = (
    "id AS attempt_id, message_id AS of_message, provider_message_id AS known_id, "
    "finished_at IS NULL AS unsettled"
)


def _found(report: Report) -> tuple[str, list] | None:
    """The query for the attempt a report names, by its id (the callback URL's), else
    by the provider's message id; None when it names neither. Both databases."""
    parts, params = [], []
    if report.attempt_id is not None:
        parts.append(f"""SELECT * FROM (SELECT {_FOUND_COLUMNS}, 1 AS preference
            FROM {ATTEMPTS} WHERE provider = %s AND id = %s) AS by_url""")
        params += [report.provider, report.attempt_id]
    if report.provider_message_id:
        parts.append(f"""SELECT * FROM (SELECT {_FOUND_COLUMNS}, 2 AS preference
            FROM {ATTEMPTS} WHERE provider = %s AND provider_message_id = %s
            ORDER BY id LIMIT 1) AS by_provider""")
        params += [report.provider, report.provider_message_id]
    if not parts:
        return None
    return " UNION ALL ".join(parts) + " ORDER BY preference LIMIT 1", params


def _message_sets(report: Report, given_id: str, given_value: str) -> tuple[str, list]:
    """The moved message's SET clause and its parameters. The provider and its message
    id fill in only what the row lacks; `given_id` is the SQL of the id it takes
    (binding `given_value`)."""
    now = report.received_at
    sets = [
        "status = %s", "updated_at = %s",
        f"provider_message_id = CASE WHEN provider_message_id = '' THEN {given_id} "
        "ELSE provider_message_id END",
        "provider = CASE WHEN provider = '' THEN %s ELSE provider END",
    ]  # fmt: skip
    params: list = [report.status, now, given_value, report.provider]
    if report.effect.sent:
        sets.append("sent_at = COALESCE(sent_at, %s)")
        params.append(now)
    if report.effect.final:
        sets += ["finished_at = %s", "lease_expires_at = NULL"]
        params.append(now)
    if report.error_code:
        sets.append("error_code = %s")
        params.append(report.error_code[:32])
    return ", ".join(sets), params


def _moves(report: Report, alias: str) -> tuple[str, list]:
    """The condition that the message may move (from where it is, by `can_move`)."""
    moves_from = report.effect.moves_from
    if not moves_from:
        return "false", []
    return f"{alias}status IN ({', '.join(['%s'] * len(moves_from))})", list(moves_from)


_MOVED_COLUMNS = ", ".join(Moved._fields)
_KEEP = f"""INSERT INTO {PROVIDER_EVENTS} (provider, provider_message_id, status, attempt_id,
    error_code, received_at)"""


def _in_one_statement(report: Report) -> Recorded | None:
    """PostgreSQL: the report in one statement. Its parts run in the order the
    dispatcher takes the rows (the report's key, the attempt, then the message): each
    one reads the one before as a join input, which its rows wait for, so a callback
    and a dispatcher's batch never lock in opposite orders."""
    found = _found(report)
    if found is None:
        return None
    found_sql, found_params = found
    # Its one time, bound as the ORM binds it, once: the statement takes it five times.
    r = report._replace(received_at=utc(report.received_at))
    now = r.received_at
    sets, set_params = _message_sets(
        r, "COALESCE(NULLIF(f.known_id, ''), %s)", r.provider_message_id
    )
    may_move, move_params = _moves(r, "o.")
    emitted, emit_params = "", []
    if event_type := r.effect.event_type:
        rows = f"""SELECT site_id, %s AS event_type, {_payload_sql("m")} AS payload,
            %s::timestamptz AS created_at FROM moved m"""
        emitted, emit_params = f", emitted AS ({events.insert_sql(rows)})", [event_type, now]
    sql = f"""WITH found AS ({found_sql}),
        kept AS ({_KEEP} SELECT %s, %s, %s, attempt_id, %s, %s::timestamptz FROM found
            ON CONFLICT (provider, provider_message_id, status) DO NOTHING RETURNING id),
        fresh AS (SELECT count(*) > 0 AS kept FROM kept),
        settled AS (UPDATE {ATTEMPTS} AS t SET
                provider_message_id = CASE WHEN f.known_id = '' AND t.provider_message_id = ''
                    THEN %s ELSE t.provider_message_id END,
                status = CASE WHEN f.unsettled AND k.kept AND t.finished_at IS NULL
                    THEN %s ELSE t.status END,
                finished_at = CASE WHEN f.unsettled AND k.kept
                    THEN COALESCE(t.finished_at, %s::timestamptz) ELSE t.finished_at END
            FROM found f, fresh k
            WHERE t.id = f.attempt_id AND (f.known_id = '' OR (f.unsettled AND k.kept))
            RETURNING t.id),
        moved AS (UPDATE {OUTBOX} AS o SET {sets}
            FROM found f, fresh k, (SELECT count(*) AS settled_rows FROM settled) AS s
            WHERE o.id = f.of_message AND k.kept AND {may_move}
            RETURNING {", ".join(f"o.{c}" for c in Moved._fields)}),
        noted AS (INSERT INTO {EVENTS} (message_id, at, status, reasons, note)
            SELECT id, %s::timestamptz, %s, '[]', %s FROM moved){emitted}
        SELECT f.of_message, k.kept, m.* FROM found f CROSS JOIN fresh k
            LEFT JOIN moved m ON true"""
    params = [
        *found_params,
        r.provider, r.provider_message_id, r.status, r.error_code, now,
        r.provider_message_id, r.effect.settles_as, now,
        *set_params, *move_params,
        now, r.status, r.error_code,
        *emit_params,
    ]  # fmt: skip
    # Prepared on the server (carebell.prepared): planning this WITH costs PostgreSQL
    # as much as running it, and its text is one of a few per shape of report.
    with execute_prepared(sql, params) as cursor:
        row = cursor.fetchone()
    if row is None:
        return None
    moved = Moved(*row[2:]) if row[2] is not None else None
    return Recorded(row[0], bool(row[1]), moved)


def _step_by_step(report: Report) -> Recorded | None:
    """SQLite (no data-modifying WITH): the same steps, one statement each, inside the
    caller's transaction, which holds the database's one write lock."""
    found = _found(report)
    if found is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(*found)
        row = cursor.fetchone()
    if row is None:
        return None
    attempt_id, message_id, known_id, unsettled = row[0], row[1], row[2], bool(row[3])
    # Without an id of its own, the callback beat the dispatcher's commit (or the
    # worker died): the report itself tells us the provider accepted this attempt.
    fill = "" if known_id else report.provider_message_id
    kept = _keep_once(report, attempt_id)
    effect = report.effect
    settle = (effect.settles_as, report.received_at) if kept and unsettled else None
    _update_attempt(attempt_id, fill, settle)
    if not kept or not effect.moves_from:
        return Recorded(message_id, kept, None)
    moved = _advance(report, message_id, known_id or fill)
    if moved is not None and effect.event_type:
        events.emit(moved.site_id, effect.event_type, payload(moved), report.received_at)
    return Recorded(message_id, kept, moved)


def _keep_once(report: Report, attempt_id: int) -> bool:
    """Keep the report (provider, message id, status) unless kept already: True the
    first time. ON CONFLICT DO NOTHING, so a replay costs no IntegrityError."""
    sql = f"""{_KEEP} VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (provider, provider_message_id, status) DO NOTHING RETURNING id"""
    r = report
    params = [r.provider, r.provider_message_id, r.status, attempt_id, r.error_code, r.received_at]
    with connection.cursor() as cursor:
        cursor.execute(sql, utc_params(params))
        return cursor.fetchone() is not None


def _update_attempt(attempt_id: int, fill: str, settle) -> None:
    """Fill in the attempt's provider message id (`fill`, where it has none), and/or
    settle it (`settle`: its status and finished_at) where it is unsettled."""
    sets, params = [], []
    if fill:
        sets.append("provider_message_id = CASE WHEN provider_message_id = '' THEN %s "
                    "ELSE provider_message_id END")  # fmt: skip
        params.append(fill)
    if settle is not None:
        sets.append("status = CASE WHEN finished_at IS NULL THEN %s ELSE status END")
        sets.append("finished_at = COALESCE(finished_at, %s)")
        params += list(settle)
    if sets:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {ATTEMPTS} SET {', '.join(sets)} WHERE id = %s",
                utc_params([*params, attempt_id]),
            )


def _advance(report: Report, message_id: int, given_id: str) -> Moved | None:
    """The message moved if it may be from where it is, then its event; the row."""
    sets, params = _message_sets(report, "%s", given_id)
    may_move, move_params = _moves(report, "")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {OUTBOX} SET {sets} WHERE id = %s AND {may_move} RETURNING {_MOVED_COLUMNS}",
            utc_params([*params, message_id, *move_params]),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(
            f"INSERT INTO {EVENTS} (message_id, at, status, reasons, note) "
            "VALUES (%s, %s, %s, '[]', %s)",
            utc_params([message_id, report.received_at, report.status, report.error_code]),
        )
    return Moved(*row)
