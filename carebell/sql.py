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

from django.db import connection
from django.db.models import QuerySet
from psycopg import postgres, pq


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
