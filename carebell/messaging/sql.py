"""Datetime parameters for raw SQL, bound exactly as the ORM binds them.

The ORM turns an aware datetime into UTC before binding it; a raw cursor binds what
it is given. PostgreSQL compares timestamptz values by instant whatever their offset,
but SQLite stores and compares datetimes as text: '2026-11-25 10:00:00-05:00' sorts
before the stored '2026-11-25 15:00:00' although it is the same instant, so a due row
would be missed (and a row written with an offset would compare wrongly ever after).
Every datetime bound in raw SQL goes through `utc` (or `utc_params` for a whole list).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection


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
