"""Stores planned decisions in the outbox in bulk, creating nothing twice.

PostgreSQL: rows stream through COPY into a temporary table and move with one
INSERT … ON CONFLICT DO NOTHING per flush, close to COPY's own rate. SQLite:
INSERT OR IGNORE in one transaction per flush.
"""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection, transaction

from carebell.messaging.actions import reasons_json
from carebell.messaging.models import OutboxMessage, OutboxSubject
from carebell.messaging.planning.decisions import Decision

TABLE = OutboxMessage._meta.db_table
COLUMNS = (
    "site_id", "patient_id", "contact_id", "contact_point_id", "to_address", "channel", "kind",
    "priority", "rule_id", "language", "entity_type", "entity_id", "entity_name", "entity_ids",
    "event_at", "not_after", "dedupe_key", "planned_at", "due_at", "status", "block_reason",
    "reasons", "subject", "body", "html_body", "segments", "attempts", "provider",
    "provider_message_id", "error_code", "error_message", "created_at", "updated_at",
)  # fmt: skip


class OutboxWriter:
    """Collects planned decisions and writes them `flush_every` at a time."""

    def __init__(self, now: dt.datetime, flush_every: int = 20_000) -> None:
        self.now = now
        self.flush_every = flush_every
        self.rows: list[tuple] = []
        self.combined: list[Decision] = []
        self.offered = 0

    def add(self, decision: Decision) -> None:
        self.rows.append(self._row(decision))
        if decision.entity_ids:
            self.combined.append(decision)
        if len(self.rows) >= self.flush_every:
            self.flush()

    def add_capped(self, decision: Decision) -> None:
        """Keep a message the frequency caps left no room for as `blocked` (cap), so
        it is never silently dropped (SPEC §4) and staff can see why."""
        self.rows.append(self._row(decision, status="blocked", block_reason="cap"))
        if len(self.rows) >= self.flush_every:
            self.flush()

    def _row(self, d: Decision, status: str = "scheduled", block_reason: str = "") -> tuple:
        now = self.now
        planned = d.planned_at or now
        return (
            d.site_id, d.patient_id, d.contact_id, d.contact_point_id, d.to, d.channel, d.kind,
            d.priority, d.rule_id, d.language, d.entity_type, d.entity_id, d.entity_name[:200],
            json.dumps(d.entity_ids), d.event_at, d.not_after, d.dedupe_key, planned, planned,
            status, block_reason, json.dumps(reasons_json(d.reasons)), "", "", "", 0, 0, "", "",
            "", "", now, now,
        )  # fmt: skip

    def flush(self) -> None:
        if not self.rows:
            return
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy_insert(self.rows)
            else:
                _insert_or_ignore(self.rows)
            _link_subjects(self.combined)
        self.offered += len(self.rows)
        self.rows, self.combined = [], []


def _copy_insert(rows: list[tuple]) -> None:
    columns = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        # Only the written columns, without the table's NOT NULL id (an identity
        # column, which LIKE copies without its default).
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS planned_stage ON COMMIT DELETE ROWS "
            f"AS SELECT {columns} FROM {TABLE} WITH NO DATA"
        )
        raw = cursor.cursor  # the psycopg cursor, for COPY
        with raw.copy(f"COPY planned_stage ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM planned_stage "
            f"ON CONFLICT (dedupe_key) DO NOTHING"
        )


def _insert_or_ignore(rows: list[tuple]) -> None:
    marks = ", ".join(["%s"] * len(COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})", rows
        )


def _link_subjects(combined: list[Decision]) -> None:
    """Index every entity of a combined message (new ones only)."""
    if not combined:
        return
    by_key = {d.dedupe_key: d for d in combined}
    fresh = OutboxMessage.objects.filter(dedupe_key__in=list(by_key), subjects__isnull=True)
    OutboxSubject.objects.bulk_create(
        OutboxSubject(message_id=message_id, entity_type=by_key[key].entity_type, entity_id=i)
        for message_id, key in fresh.values_list("id", "dedupe_key")
        for i in by_key[key].entity_ids
    )
