"""Bulk insertion that bypasses the ORM: COPY on PostgreSQL, executemany on SQLite.

Rows are plain tuples in the column order a `Table` declares; primary keys are
assigned by the caller from blocks reserved in advance (`IdAllocator`), so children
can point at parents before either is written. Columns the caller leaves out get the
model field's default, so a field added later with a default does not break seeding.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.models import JSONField, Model


class Table:
    """One model's table, with the columns the caller provides (by attname, e.g.
    "patient_id") after the primary key; every other column gets its field's default."""

    def __init__(self, model: type[Model], columns: Sequence[str], now: dt.datetime):
        self.model = model
        self.name = model._meta.db_table
        fields = {f.attname: f for f in model._meta.concrete_fields}
        unknown = set(columns) - set(fields)
        if unknown:
            raise ValueError(f"{self.name} has no column(s) {', '.join(sorted(unknown))}")
        self.given = list(columns)
        missing = [f for name, f in fields.items() if name not in columns and not f.primary_key]
        self.filled = [f.column for f in missing]
        self.fill_values = tuple(_default_of(f, now) for f in missing)
        self.columns = [fields[name].column for name in self.given] + self.filled
        # Rows start with the primary key, then the given columns.
        self.json_positions = [
            i + 1 for i, name in enumerate(self.given) if isinstance(fields[name], JSONField)
        ]

    def complete(self, row: tuple) -> tuple:
        if self.json_positions:
            row = tuple(json.dumps(v) if i in self.json_positions else v for i, v in enumerate(row))
        return row + self.fill_values


def _default_of(field, now: dt.datetime) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    if field.has_default():
        value = field.get_default()
        return json.dumps(value) if isinstance(field, JSONField) else value
    if field.null:
        return None
    if field.blank and field.get_internal_type() in ("CharField", "TextField"):
        return ""
    raise ValueError(f"{field.model._meta.db_table}.{field.column} needs a value")


class IdAllocator:
    """Hands out primary keys one at a time from blocks reserved from the database."""

    def __init__(self, reserve: Callable[[Table, int], list[int]], block: int = 20_000):
        self._reserve = reserve
        self._block = block
        self._pools: dict[str, Iterator[int]] = {}

    def next(self, table: Table) -> int:
        pool = self._pools.get(table.name)
        if pool is not None:
            value = next(pool, None)
            if value is not None:
                return value
        pool = iter(self._reserve(table, self._block))
        self._pools[table.name] = pool
        return next(pool)


class PostgresWriter:
    """COPY … FROM STDIN through the psycopg 3 connection Django holds, so the rows
    are part of the surrounding transaction."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self._raw = connection.connection
        self._sequences: dict[str, str] = {}

    def reserve(self, table: Table, count: int) -> list[int]:
        # nextval over a series takes `count` values no other session can get, even
        # while others insert; sequences ignore rollbacks, which only leaves gaps.
        with self._raw.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(%s) FROM generate_series(1, %s)",
                (self._sequence(table, cursor), count),
            )
            return [row[0] for row in cursor.fetchall()]

    def _sequence(self, table: Table, cursor) -> str:
        if table.name not in self._sequences:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,))
            self._sequences[table.name] = cursor.fetchone()[0]
        return self._sequences[table.name]

    def write(self, table: Table, rows: list[tuple]) -> None:
        if not rows:
            return
        quote = connection.ops.quote_name
        statement = (
            f"COPY {quote(table.name)} ({', '.join(quote(c) for c in ['id', *table.columns])})"
            " FROM STDIN"
        )
        complete = table.complete
        with self._raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(complete(row))


class SQLiteWriter:
    """executemany inside the caller's transaction; ids continue past the highest in
    use (SQLite's AUTOINCREMENT then moves on from them by itself)."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self._raw = connection.connection
        self._next: dict[str, int] = {}

    def reserve(self, table: Table, count: int) -> list[int]:
        start = self._next.get(table.name) or self._highest_id(table) + 1
        self._next[table.name] = start + count
        return list(range(start, start + count))

    def _highest_id(self, table: Table) -> int:
        cursor = self._raw.cursor()
        try:
            cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(table.name)}")  # noqa: S608
            highest = cursor.fetchone()[0] or 0
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,))
            found = cursor.fetchone()
        finally:
            cursor.close()
        return max(highest, found[0] if found else 0)

    def write(self, table: Table, rows: list[tuple]) -> None:
        if not rows:
            return
        quote = connection.ops.quote_name
        columns = ["id", *table.columns]
        statement = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        adapt = _sqlite_adapter(table)
        cursor = self._raw.cursor()
        try:
            cursor.executemany(statement, (adapt(table.complete(row)) for row in rows))
        finally:
            cursor.close()


def _sqlite_adapter(table: Table) -> Callable[[tuple], tuple]:
    """Datetimes as Django stores them in SQLite (naive UTC text), so they compare
    correctly with the rows the ORM writes."""
    to_text = connection.ops.adapt_datetimefield_value

    def adapt(row: tuple) -> tuple:
        return tuple(to_text(v) if isinstance(v, dt.datetime) else v for v in row)

    return adapt


def writer_for_connection() -> PostgresWriter | SQLiteWriter:
    if connection.vendor == "postgresql":
        return PostgresWriter()
    if connection.vendor == "sqlite":
        return SQLiteWriter()
    raise NotImplementedError(f"seed-demo supports PostgreSQL and SQLite, not {connection.vendor}")
