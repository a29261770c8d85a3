"""Search parameters as plain values. Pure: a query string in, ranges and tokens out,
or a 400 — an unknown parameter is refused, never ignored (a client filtering on
it would otherwise act on every row)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from carebell.interop.fhir.outcomes import invalid

DEFAULT_COUNT = 20
#: A page never holds more than this, whatever `_count` asks.
MAX_COUNT = 100
#: Accepted on every search and ignored: JSON is the only format served.
HARMLESS = frozenset({"_format", "_pretty"})
PAGING = frozenset({"_count", "_cursor"})

_DATE = re.compile(
    r"^(?P<prefix>eq|ne|lt|le|gt|ge|sa|eb)?"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True, slots=True)
class DateRange:
    """Instants from `lower` (included) to `upper` (excluded): None is open."""

    lower: dt.datetime | None
    upper: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Token:
    system: str | None  # None: any system; "": no system
    value: str


def parse_date(text: str, zone: dt.tzinfo = dt.UTC) -> DateRange:
    """A FHIR date search value ("ge2026-11-25", "2026-11", "lt2026-11-25T10:00Z") as
    the range of instants it selects. A value without a zone is read in `zone`."""
    match = _DATE.match(text.strip())
    if match is None:
        raise invalid(f"{text[:40]!r} is not a FHIR date search value (e.g. ge2026-11-25).")
    prefix = match["prefix"] or "eq"
    try:
        start, end = _period(match, zone)
    except ValueError:
        raise invalid(f"{text[:40]!r} is not a real date.") from None
    if prefix == "eq":
        return DateRange(start, end)
    if prefix in ("lt", "eb"):
        return DateRange(None, start)
    if prefix == "le":
        return DateRange(None, end)
    if prefix in ("gt", "sa"):
        return DateRange(end, None)
    if prefix == "ge":
        return DateRange(start, None)
    raise invalid("The date prefix 'ne' is not supported.")


def _period(match, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    year, month, day = int(match["year"]), match["month"], match["day"]
    if match["zone"]:
        zone = dt.UTC if match["zone"] == "Z" else dt.datetime.strptime(match["zone"], "%z").tzinfo
    if month is None:
        start = dt.datetime(year, 1, 1, tzinfo=zone)
        return start, start.replace(year=year + 1)
    if day is None:
        start = dt.datetime(year, int(month), 1, tzinfo=zone)
        after = (start + dt.timedelta(days=32)).replace(day=1)
        return start, after
    date = dt.date(year, int(month), int(day))
    if match["time"] is None:
        start = dt.datetime.combine(date, dt.time(0), tzinfo=zone)
        return start, start + dt.timedelta(days=1)
    clock = dt.time.fromisoformat(match["time"])
    start = dt.datetime.combine(date, clock, tzinfo=zone)
    step = (
        dt.timedelta(seconds=1)
        if clock.second or len(match["time"]) > 5
        else dt.timedelta(minutes=1)
    )
    return start, start + step


def parse_token(text: str) -> Token:
    """ "system|value", "|value" (no system) or "value" (any system)."""
    if "|" in text:
        system, _, value = text.partition("|")
        if not value:
            raise invalid("A token search needs a value after '|'.")
        return Token(system, value)
    if not text:
        raise invalid("A token search needs a value.")
    return Token(None, text)


def parse_reference(text: str, resource_type: str) -> str:
    """The id of "Patient/123" or "123"."""
    parts = text.strip().rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != resource_type:
        raise invalid(f"{text[:40]!r} is not a {resource_type} reference.")
    if not parts[-1]:
        raise invalid("A reference search needs an id.")
    return parts[-1]


def page_size(values: list[str]) -> int:
    if not values:
        return DEFAULT_COUNT
    try:
        count = int(values[-1])
    except ValueError:
        raise invalid("_count must be a whole number.") from None
    if count < 1:
        raise invalid("_count must be at least 1.")
    return min(count, MAX_COUNT)


def check_names(params: Mapping[str, Iterable[str]], supported: Iterable[str], resource_type: str):
    """Refuse any parameter (or modifier, "identifier:exact") not in `supported`."""
    allowed = set(supported) | HARMLESS | PAGING
    unknown = sorted(name for name in params if name not in allowed)
    if unknown:
        listed = ", ".join(sorted(set(supported)))
        raise invalid(
            f"Unsupported search parameter {unknown[0][:40]!r} for {resource_type} "
            f"(supported: {listed}, _count)."
        )
