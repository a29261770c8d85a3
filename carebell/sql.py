"""Datetime parameters for raw SQL, bound exactly as the ORM binds them.

The ORM turns an aware datetime into UTC before binding it; a raw cursor binds what
it is given. PostgreSQL compares timestamptz values by instant whatever their offset,
but SQLite stores and compares datetimes as text: '2026-11-25 10:00:00-05:00' sorts
before the stored '2026-11-25 15:00:00' although it is the same instant, so a due row
would be missed (and a row written with an offset would compare wrongly ever after).
Every datetime bound in raw SQL goes through `utc` (or `utc_params` for a whole list).

Also the PostgreSQL read and array-text helpers the planner, the dispatcher and the
outbox share: psycopg adapts a Python list element by element in Python, and
Django's timestamp loader is pure Python; together they cost more CPU per message
than the rest of a batch's database work (profiled), so arrays travel as text
written here and rows are read with psycopg's compiled timestamp loader.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from django.db import connection, connections, models
from django.db.models import QuerySet
from psycopg import postgres, pq


def is_row_id(value) -> bool:
    """True for an int a bigint primary key can hold (1 to 2**63 - 1): an id from a
    client or a session is checked with this before it reaches a statement, where a
    larger one would be a database error rather than "no such row"."""
    return type(value) is int and 0 < value < 2**63


def utc(value: dt.datetime | None):
    """`value` as the ORM binds a DateTimeField: the same instant in UTC (on SQLite, the
    naive UTC text Django stores). None stays None; a naive datetime is refused, since
    its instant is unknown."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("raw SQL takes aware datetimes only")
    return connection.ops.adapt_datetimefield_value(value.astimezone(dt.UTC))


def utc_params(params: Iterable) -> list:
    """`params` with every datetime in them passed through `utc`, the rest as they are."""
    return [utc(p) if isinstance(p, dt.datetime) else p for p in params]


#: psycopg's compiled loader; the session time zone is UTC (Django sets it), so
#: the values come back aware and in UTC, as Django's own loader returns them.
_TIMESTAMPTZ = postgres.types["timestamptz"].oid
_FAST_TIMESTAMPTZ = postgres.adapters.get_loader(_TIMESTAMPTZ, pq.Format.TEXT)


def fetch_rows(queryset: QuerySet) -> list[tuple]:
    """The rows of a `values_list` queryset, read faster on PostgreSQL. JSON columns
    come back as text there (decode them with `json_value`)."""
    if connection.vendor != "postgresql":
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        fast_timestamps(cursor)
        cursor.execute(sql, params)
        return cursor.fetchall()


def fast_timestamps(cursor) -> None:
    """Read this (PostgreSQL) Django cursor's timestamptz columns with psycopg's
    compiled loader: Django's, in pure Python, costs more than the rest of reading
    a batch of rows."""
    cursor.cursor.adapters.register_loader(_TIMESTAMPTZ, _FAST_TIMESTAMPTZ)


def json_value(value):
    """A JSON column's value as `fetch_rows` returned it."""
    if not isinstance(value, str):
        return value
    return [] if value == "[]" else json.loads(value)


def by_ids(model, ids: Iterable[int]) -> QuerySet:
    """`model` rows with these ids; on PostgreSQL as `id = ANY(array text)`: one
    parameter instead of one per id, which psycopg would adapt one by one."""
    if connection.vendor != "postgresql":
        return model.objects.filter(id__in=list(ids))
    column = f"{connection.ops.quote_name(model._meta.db_table)}.id"
    where = [f"{column} = ANY(%s::bigint[])"]
    return model.objects.extra(where=where, params=[ints(ids)])  # noqa: S610 - a bound parameter


# --- PostgreSQL array text ---------------------------------------------------------


def ints(values: Iterable[int | None]) -> str:
    """Integers as PostgreSQL array text (None as NULL)."""
    values = list(values)
    if None in values:
        return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"
    return "{" + ",".join(map(str, map(int, values))) + "}"


def texts(values: Iterable) -> str:
    """Values as PostgreSQL text-array text (None as NULL; datetimes in ISO form)."""
    # Inside double quotes only '"' and '\' need a backslash (PostgreSQL docs, 8.15.6).
    found = [v if v is None or type(v) is str else _as_text(v) for v in values]
    if None in found:
        quoted = ("NULL" if v is None else '"' + _escaped(v) + '"' for v in found)
        return "{" + ",".join(quoted) + "}"
    if not found:
        return "{}"
    return '{"' + '","'.join(map(_escaped, found)) + '"}'


def bools(values: Iterable[bool]) -> str:
    """Booleans as PostgreSQL array text."""
    return "{" + ",".join("t" if v else "f" for v in values) + "}"


def _escaped(text: str) -> str:
    if "\\" in text or '"' in text:
        return text.replace("\\", "\\\\").replace('"', '\\"')
    return text


def _as_text(value) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)  # a StrEnum's value


# --- Many new rows at once ----------------------------------------------------------

#: Below this many rows an INSERT costs less than COPY's extra round trips.
COPY_FROM = 100
_COPY_TYPES: dict[str, dict[str, str]] = {}


def insert_new(model, objs: list, *, batch_size: int = 1000) -> None:
    """Insert these new `model` instances as bulk_create does (auto_now stamps, each
    field's value prepared for the database, the pk set on each), on PostgreSQL by
    binary COPY once there are COPY_FROM of them: an import's tens of thousands of
    rows go in at ~15 times bulk_create's rate, which spends its time building, and
    PostgreSQL parsing, one large statement per `batch_size` rows. The ids are drawn
    from the table's own sequence first, so they are what an INSERT would take."""
    if connection.vendor != "postgresql" or len(objs) < COPY_FROM:
        model.objects.bulk_create(objs, batch_size=batch_size)
        return
    meta = model._meta
    fields = list(meta.concrete_fields)
    table, quote = meta.db_table, connection.ops.quote_name
    db = connections[connection.alias]  # the connection itself, not its per-thread proxy
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, meta.pk.column, len(objs)],
        )
        ids = [new_id for (new_id,) in cursor.fetchall()]
        if None in ids:  # a primary key without a sequence: nothing to draw from
            raise ValueError(f"{table}.{meta.pk.column} has no sequence to draw ids from")
        types = _copy_types(cursor, table)
        columns = ", ".join(quote(f.column) for f in fields)
        sql = f"COPY {quote(table)} ({columns}) FROM STDIN (FORMAT BINARY)"
        plain = [_PLAIN.get(type(_target(f))) for f in fields]
        with cursor.cursor.copy(sql) as copy:
            copy.set_types([types[f.column] for f in fields])
            for obj, new_id in zip(objs, ids, strict=True):
                setattr(obj, meta.pk.attname, new_id)
                row = []
                for field, kind in zip(fields, plain, strict=True):
                    value = field.pre_save(obj, True)
                    if value is not None and not _is_plain(value, kind):
                        value = field.get_db_prep_save(value, db)
                    row.append(value)
                copy.write_row(row)
    for obj in objs:
        obj._state.adding, obj._state.db = False, db.alias


#: Fields whose value of this exact type PostgreSQL takes as it is: get_db_prep_save
#: would hand it back unchanged (at some microseconds a value, most of the COPY's
#: Python). Any other value, or field, is prepared as the ORM prepares it.
_PLAIN: dict[type, type] = {
    models.CharField: str, models.TextField: str, models.BooleanField: bool,
    models.IntegerField: int, models.BigIntegerField: int, models.SmallIntegerField: int,
    models.PositiveIntegerField: int, models.PositiveSmallIntegerField: int,
    models.AutoField: int, models.BigAutoField: int, models.DateTimeField: dt.datetime,
}  # fmt: skip


def _target(field):
    # A foreign key's value is its target's (the related row's id).
    return field.target_field if field.is_relation else field


def _is_plain(value, kind: type | None) -> bool:
    if kind is None or type(value) is not kind:
        return False
    return kind is not dt.datetime or value.utcoffset() is not None  # naive: the ORM warns


def _copy_types(cursor, table: str) -> dict[str, str]:
    """The PostgreSQL type of each column of `table`, for a binary COPY."""
    found = _COPY_TYPES.get(table)
    if found is None:
        cursor.execute(
            "SELECT a.attname, t.typname FROM pg_attribute a"
            " JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            [table],
        )
        found = _COPY_TYPES[table] = dict(cursor.fetchall())
    return found
