"""Stores planned decisions in the outbox in bulk, creating nothing twice: the
outbox's `plan` verb (`OutboxWriter`), private beneath carebell.outbox.

Each database has its own way in, behind one small interface (`_Postgres`,
`_SQLite`: `insert_new`, `writes_behind`). PostgreSQL: one query finds which keys
of a batch are stored already, and binary COPY writes the others straight into the
outbox (a temporary table and INSERT … ON CONFLICT DO NOTHING when another writer
got in between). Outside a transaction (a planner pass), a large pass writes
behind: a thread with its own connection stores one batch while the planner decides
the next, so the two cores work at once. SQLite: INSERT OR IGNORE in one transaction
per flush.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import weakref
from collections import namedtuple
from typing import TYPE_CHECKING

import psycopg
from django.db import connection, transaction
from psycopg.types.json import set_json_dumps

from carebell.core.reasons import Code
from carebell.messaging.models import OutboxMessage, OutboxSubject
from carebell.outbox._stored import reasons_json
from carebell.prepared import execute_prepared
from carebell.sql import utc_params

if TYPE_CHECKING:  # the planner's decisions are read by attribute; no import cycle
    from carebell.planning.decisions import Decision

TABLE = OutboxMessage._meta.db_table
COLUMNS = (
    "site_id", "patient_id", "contact_id", "contact_point_id", "to_address", "channel", "kind",
    "priority", "rule_id", "language", "entity_type", "entity_id", "entity_name", "entity_ids",
    "event_at", "not_after", "dedupe_key", "planned_at", "due_at", "status", "block_reason",
    "reasons", "subject", "body", "html_body", "segments", "attempts", "provider",
    "provider_message_id", "error_code", "error_message", "created_at", "updated_at",
)  # fmt: skip
STAGE = "planned_rows"
JSON_COLUMNS = frozenset({"entity_ids", "reasons"})
# The stage holds JSON as text; the INSERT casts it back.
_STAGE_COLUMNS = ", ".join(f"{c}::text AS {c}" if c in JSON_COLUMNS else c for c in COLUMNS)
_FROM_STAGE = ", ".join(f"{c}::jsonb" if c in JSON_COLUMNS else c for c in COLUMNS)
_EMPTY = "[]"
#: Reasons as stored, by identity of the reasons tuple (kept alive here, so its id
#: cannot be reused): the rules core memoises its plans, so a pass hands over the
#: same tuple for every appointment of a slot or day.
_REASONS_TEXT: dict[int, tuple[tuple, str]] = {}
_REASONS_TEXT_LIMIT = 10_000
_column_types: list[str] = []
#: One outbox row as the planner stores it, a field per column of COLUMNS.
PlannedRow = namedtuple("PlannedRow", COLUMNS)


class OutboxWriter:
    """Collects planned decisions and writes them `flush_every` at a time; `flush()`
    writes the rest and returns when everything is stored. `offered` counts the rows
    handed to the outbox, `stored` those it did not hold already."""

    def __init__(self, now: dt.datetime, flush_every: int = 20_000) -> None:
        self.now = now
        self.flush_every = flush_every
        self.rows: list[PlannedRow] = []
        self.combined: list[Decision] = []
        self.offered = 0
        self.stored = 0
        self._behind: _WriteBehind | None = None

    def add(self, decision: Decision) -> None:
        self.rows.append(self._row(decision))
        if decision.entity_ids:
            self.combined.append(decision)
        if len(self.rows) >= self.flush_every:
            self._pass_on()

    def add_capped(self, decision: Decision) -> None:
        """Keep a message the frequency caps left no room for as `blocked` (cap), so
        it is never silently dropped (SPEC §4) and staff can see why."""
        self.rows.append(self._row(decision, status="blocked", block_reason="cap"))
        if decision.entity_ids:
            self.combined.append(decision)
        if len(self.rows) >= self.flush_every:
            self._pass_on()

    def add_written(
        self, decision: Decision, *, subject: str, body: str, segments: int,
        block_reason: str = "", html_body: str = "",
    ) -> None:  # fmt: skip
        """Keep a message whose words staff wrote for it (a group or one-off message,
        rendered for its recipient), scheduled — or blocked with `block_reason` when
        its recipient may not receive it, so it is never silently dropped and the
        queue says why. The dispatcher sends written rows as they are, after its
        checks."""
        status = "blocked" if block_reason else "scheduled"
        row = self._row(decision, status=status, block_reason=block_reason)
        self.rows.append(
            row._replace(subject=subject[:300], body=body, html_body=html_body, segments=segments)
        )
        if len(self.rows) >= self.flush_every:
            self._pass_on()

    def store(self, decision: Decision) -> None:
        """What every planning path calls for each decision: a planned one is written
        as scheduled, one the caps kept from going as blocked (cap); the rest (an
        ineligible contact, a time passed) are not messages."""
        if decision.planned:
            self.add(decision)
        elif is_capped(decision):
            self.add_capped(decision)

    def _row(self, d: Decision, status: str = "scheduled", block_reason: str = "") -> PlannedRow:
        now = self.now
        planned = d.planned_at or now
        ids = json.dumps(d.entity_ids) if d.entity_ids else _EMPTY
        return PlannedRow(
            d.site_id, d.patient_id, d.contact_id, d.contact_point_id, d.to, d.channel, d.kind,
            d.priority, d.rule_id, d.language, d.entity_type, d.entity_id, d.entity_name[:200],
            ids, d.event_at, d.not_after, d.dedupe_key, planned, planned, status, block_reason,
            reasons_text(d.reasons), "", "", "", 0, 0, "", "", "", "", now, now,
        )  # fmt: skip

    def _pass_on(self) -> None:
        if self._behind is None and _may_write_behind():
            self._behind = _WriteBehind(self)
        if self._behind is None:
            self.flush()
            return
        self._behind.put(self.rows, self.combined)
        self.offered += len(self.rows)
        self.rows, self.combined = [], []

    def flush(self) -> None:
        if self._behind is not None:
            behind, self._behind = self._behind, None
            if self.rows:
                behind.put(self.rows, self.combined)
                self.offered += len(self.rows)
                self.rows, self.combined = [], []
            self.stored += behind.finish()
            return
        if not self.rows:
            return
        self.stored += _write(self.rows, self.combined)
        self.offered += len(self.rows)
        self.rows, self.combined = [], []


_CAPPED_CODES = frozenset({Code.CAP_NO_ROOM, Code.CAP_COMBINED})


def is_capped(decision: Decision) -> bool:
    """A message the SMS caps found no room for before its event, or combined with
    another text of the same day about the same subject."""
    return bool(decision.to and decision.dedupe_key) and any(
        r.code in _CAPPED_CODES for r in decision.reasons
    )


def _may_write_behind() -> bool:
    # Only when no transaction is open: otherwise its rows must commit with it.
    return (
        _database().writes_behind and not connection.in_atomic_block and connection.get_autocommit()
    )


def _write(rows: list[PlannedRow], combined: list[Decision]) -> int:
    """Stores the rows whose key is new; returns how many. Inside a caller's
    transaction no savepoint is needed: a failure here dooms that transaction."""
    with transaction.atomic(savepoint=False):
        stored = _database().insert_new(rows)
        _link_subjects(combined)
    return stored


class _WriteBehind:
    """A thread that writes batches, one transaction each, on its own connection
    (Django's connections are per thread), at most one batch waiting."""

    def __init__(self, owner: OutboxWriter) -> None:
        self._batches: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._stored = 0
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()
        # A writer dropped without flush() (its pass failed) lets the thread go.
        weakref.finalize(owner, self._abandoned.set)

    def put(self, rows: list[tuple], combined: list[Decision]) -> None:
        self._raise()
        self._batches.put((rows, combined))

    def finish(self) -> int:
        """Waits for the batches put; returns how many rows they stored."""
        self._batches.put(None)
        self._thread.join()
        self._raise()
        return self._stored

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        try:
            while (batch := self._next()) is not None:
                if self._error is None:
                    try:
                        self._stored += _write(*batch)
                    except BaseException as exc:  # raised in the planner's thread
                        self._error = exc
        finally:
            connection.close()

    def _next(self) -> tuple | None:
        while True:
            try:
                return self._batches.get(timeout=1.0)
            except queue.Empty:
                if self._abandoned.is_set():
                    return None


def reasons_text(reasons: tuple) -> str:
    """Reasons as the JSON text stored on the row."""
    if not reasons:
        return _EMPTY
    found = _REASONS_TEXT.get(id(reasons))
    if found is not None and found[0] is reasons:
        return found[1]
    if len(_REASONS_TEXT) >= _REASONS_TEXT_LIMIT:
        _REASONS_TEXT.clear()
    text = json.dumps(reasons_json(reasons))
    _REASONS_TEXT[id(reasons)] = (reasons, text)
    return text


#: Up to this many rows (one appointment's or prescription's messages, an API call's
#: or a feed message's), one INSERT … ON CONFLICT DO NOTHING stores them: one
#: statement, where the COPY path takes a key lookup, a savepoint and the COPY.
FEW = 64


def _copy_insert(rows: list[PlannedRow]) -> int:
    """Rows whose key is not stored yet go straight into the outbox by COPY; if
    another writer stores one of them meanwhile, the batch goes through the stage's
    INSERT … ON CONFLICT DO NOTHING instead. A few rows take that INSERT at once."""
    with connection.cursor() as cursor:
        if len(rows) <= FEW:
            return _insert_few(cursor, rows)
        raw = cursor.cursor  # the psycopg cursor, for COPY
        fresh = _not_stored(raw, rows)
        if not fresh:
            return 0
        try:
            with transaction.atomic():  # a savepoint to return to
                _copy(raw, TABLE, fresh, _types(raw, json="jsonb"))
        except psycopg.errors.UniqueViolation:
            return _stage_insert(cursor, fresh)
        return len(fresh)


def _not_stored(raw, rows: list[PlannedRow]) -> list[PlannedRow]:
    """The rows whose dedupe key is neither stored nor taken by an earlier row (what
    ON CONFLICT DO NOTHING would insert), found with one query."""
    keys = [row.dedupe_key for row in rows]
    # Server-side binding: the keys travel as one array parameter.
    with psycopg.Cursor(raw.connection) as lookup:
        lookup.execute(f"SELECT dedupe_key FROM {TABLE} WHERE dedupe_key = ANY(%s)", [keys])
        taken = {key for (key,) in lookup}
    fresh = []
    for row, key in zip(rows, keys, strict=True):
        if key is None:  # NULL never conflicts
            fresh.append(row)
        elif key not in taken:
            taken.add(key)
            fresh.append(row)
    return fresh


def _insert_few(cursor, rows: list[PlannedRow]) -> int:
    """What the COPY path stores, in one statement: DO NOTHING skips a key stored
    already or taken by an earlier row of the same statement (NULL never conflicts).

    The rows travel as one JSON parameter, an array of rows taken apart in their
    order and cast to the columns' types, so the statement's text is the same
    however many rows it carries: prepared once per connection, its one parameter
    parsed once. The json module writes it in C, where one array per column cost
    psycopg's Python ~150 µs for a single row, and plain VALUES of two rows or more
    (over 50 parameters) are parsed by psycopg anew on every call."""
    with execute_prepared(_few_sql(cursor), [_rows_json(rows)]) as inserted:
        return inserted.rowcount


def _rows_json(rows: list[PlannedRow]) -> str:
    # Timestamps as ISO 8601 with their offset (aware, UTC), read back exactly;
    # the JSON columns' text travels as a string and is parsed by the cast.
    return json.dumps(rows, default=dt.datetime.isoformat, ensure_ascii=False)


#: _insert_few's statement, written once the column types are known.
_FEW_SQL: list[str] = []


def _few_sql(cursor) -> str:
    if not _FEW_SQL:
        values = ", ".join(
            f"(row->>{place})::{kind}"
            for place, kind in enumerate(_types(cursor.cursor, json="jsonb"))
        )
        _FEW_SQL.append(
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT {values} "
            "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS rows (row, place) "
            "ORDER BY place ON CONFLICT (dedupe_key) DO NOTHING"
        )
    return _FEW_SQL[0]


def _stage_insert(cursor, rows: list[tuple]) -> int:
    raw = cursor.cursor
    # Only the written columns, without the table's NOT NULL id (an identity column,
    # which LIKE copies without its default).
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} ON COMMIT DELETE ROWS "
        f"AS SELECT {_STAGE_COLUMNS} FROM {TABLE} WITH NO DATA"
    )
    _copy(raw, STAGE, rows, _types(raw, json="text"))
    cursor.execute(
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT {_FROM_STAGE} FROM {STAGE} "
        f"ON CONFLICT (dedupe_key) DO NOTHING"
    )
    stored = cursor.rowcount
    cursor.execute(f"TRUNCATE {STAGE}")
    return stored


def _copy(raw, table: str, rows: list[tuple], types: list[str]) -> None:
    # JSON columns hold JSON text already: pass it on as it is.
    set_json_dumps(_as_is, context=raw)
    with raw.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        # Declared types let psycopg write binary without looking at each value.
        copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)


def _as_is(text: str) -> str:
    return text


def _types(cursor, json: str) -> list[str]:
    """The type of each of COLUMNS, with `json` for the JSON ones."""
    if not _column_types:
        cursor.execute(
            "SELECT a.attname, t.typname FROM pg_attribute a"
            " JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            (TABLE,),
        )
        found = dict(cursor.fetchall())
        _column_types[:] = [found[c] for c in COLUMNS]
    return [json if c in JSON_COLUMNS else t for c, t in zip(COLUMNS, _column_types, strict=True)]


def _insert_or_ignore(rows: list[PlannedRow]) -> int:
    marks = ", ".join(["%s"] * len(COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})",
            [utc_params(row) for row in rows],
        )
        return cursor.rowcount  # summed over the rows; an ignored row adds nothing


def _link_subjects(combined: list[Decision]) -> None:
    """Index every entity of a combined message (new ones only: a message with
    subjects keeps them)."""
    if not combined:
        return
    by_key = {d.dedupe_key: d for d in combined}
    if connection.vendor == "postgresql":
        subjects = [
            {"dedupe_key": key, "entity_type": d.entity_type, "entity_id": i}
            for key, d in by_key.items()
            for i in d.entity_ids
        ]
        # One prepared statement, where the ORM's read and bulk_create took two
        # and compiled both each time (an appointment's combined reminder).
        with execute_prepared(_LINK, [json.dumps(subjects, ensure_ascii=False)]):
            return
    fresh = OutboxMessage.objects.filter(dedupe_key__in=list(by_key), subjects__isnull=True)
    OutboxSubject.objects.bulk_create(
        OutboxSubject(message_id=message_id, entity_type=by_key[key].entity_type, entity_id=i)
        for message_id, key in fresh.values_list("id", "dedupe_key")
        for i in by_key[key].entity_ids
    )


_SUBJECTS = OutboxSubject._meta.db_table
#: Each subject's message looked up by its dedupe key (unique) and kept only while it
#: has no subjects, row by row. PostgreSQL guesses 100 rows for any
#: jsonb_to_recordset, so written as plain joins it hashed them against a scan of the
#: whole outbox and then of every subject (5 ms at 13,000 messages, growing with the
#: tables until they were large enough to tip the estimate); inside a LATERAL …
#: LIMIT 1 (a key names one message) both are index lookups.
_LINK = (
    f"INSERT INTO {_SUBJECTS} (message_id, entity_type, entity_id)"
    " SELECT o.id, s.entity_type, s.entity_id"
    " FROM jsonb_to_recordset(%s::jsonb) AS s (dedupe_key text, entity_type text, entity_id bigint)"
    f" CROSS JOIN LATERAL (SELECT m.id FROM {TABLE} m WHERE m.dedupe_key = s.dedupe_key"
    f" AND NOT EXISTS (SELECT FROM {_SUBJECTS} x WHERE x.message_id = m.id) LIMIT 1) o"
)


class _Postgres:
    """Binary COPY of the rows not stored yet; a second connection may write behind
    the planner (two cores at once)."""

    writes_behind = True

    @staticmethod
    def insert_new(rows: list[PlannedRow]) -> int:
        return _copy_insert(rows)


class _SQLite:
    """INSERT OR IGNORE; one writer at a time, so never behind."""

    writes_behind = False

    @staticmethod
    def insert_new(rows: list[PlannedRow]) -> int:
        return _insert_or_ignore(rows)


_DATABASES = {"postgresql": _Postgres, "sqlite": _SQLite}


def _database() -> type[_Postgres] | type[_SQLite]:
    return _DATABASES[connection.vendor]
