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
from contextlib import contextmanager
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
        # Full rows start with the primary key, then the given and the filled columns.
        ordered = [fields[name] for name in self.given] + missing
        self.json_positions = frozenset(
            i + 1 for i, f in enumerate(ordered) if isinstance(f, JSONField)
        )

    def complete(self, row: tuple) -> tuple:
        return row + self.fill_values


def _default_of(field, now: dt.datetime) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    if field.has_default():
        return field.get_default()
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
        self._types: dict[str, list[str]] = {}

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
        columns = ["id", *table.columns]
        statement = (
            f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)})"
            " FROM STDIN (FORMAT BINARY)"
        )
        complete = table.complete
        with self._raw.cursor() as cursor:
            types = self._column_types(table, columns, cursor)
            with cursor.copy(statement) as copy:
                # Declared types let psycopg dump binary without guessing per value,
                # several times faster than text COPY.
                copy.set_types(types)
                for row in rows:
                    copy.write_row(complete(row))

    def _column_types(self, table: Table, columns: list[str], cursor) -> list[str]:
        if table.name not in self._types:
            cursor.execute(
                "SELECT a.attname, t.typname FROM pg_attribute a"
                " JOIN pg_type t ON t.oid = a.atttypid"
                " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (table.name,),
            )
            by_column = dict(cursor.fetchall())
            self._types[table.name] = [by_column[c] for c in columns]
        return self._types[table.name]

    @contextmanager
    def foreign_keys_suspended(self, tables: list[Table]) -> Iterator[None]:
        """Drop the foreign keys of `tables` and add them back at the end, so each is
        checked by one join instead of one lookup per row at commit. All of it is in
        the caller's transaction: a failure restores the constraints."""
        names = [t.name for t in tables]
        with self._raw.cursor() as cursor:
            # Pending deferred checks would forbid ALTER TABLE: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
                (names,),
            )
            keys = cursor.fetchall()
            for table, name, _ in keys:
                cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        yield
        with self._raw.cursor() as cursor:
            for table, name, definition in keys:
                cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')


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
            cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(table.name)}")
            highest = cursor.fetchone()[0] or 0
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,))
            found = cursor.fetchone()
        finally:
            cursor.close()
        return max(highest, found[0] if found else 0)

    @contextmanager
    def foreign_keys_suspended(self, tables: list[Table]) -> Iterator[None]:
        # SQLite checks deferred foreign keys at commit cheaply enough.
        yield

    def write(self, table: Table, rows: list[tuple]) -> None:
        if not rows:
            return
        quote = connection.ops.quote_name
        columns = ["id", *table.columns]
        statement = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        adapt = _sqlite_adapter(table.json_positions)
        cursor = self._raw.cursor()
        try:
            cursor.executemany(statement, (adapt(table.complete(row)) for row in rows))
        finally:
            cursor.close()


def _sqlite_adapter(json_positions: frozenset[int]) -> Callable[[tuple], tuple]:
    """Datetimes as Django stores them in SQLite (naive UTC text), so they compare
    correctly with the rows the ORM writes; JSON as text."""
    to_text = connection.ops.adapt_datetimefield_value

    def adapt(row: tuple) -> tuple:
        return tuple(
            json.dumps(v)
            if i in json_positions
            else to_text(v)
            if isinstance(v, dt.datetime)
            else v
            for i, v in enumerate(row)
        )

    return adapt


def writer_for_connection() -> PostgresWriter | SQLiteWriter:
    if connection.vendor == "postgresql":
        return PostgresWriter()
    if connection.vendor == "sqlite":
        return SQLiteWriter()
    raise NotImplementedError(f"seed-demo supports PostgreSQL and SQLite, not {connection.vendor}")
