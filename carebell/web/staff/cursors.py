"""Keyset page cursors for the staff lists: '<ISO instant>~<id>', the last row's
sort instant and primary key. Pages never count or skip rows (SPEC §8: the queue
stays fast at millions of rows), so the next page starts after this pair."""

from __future__ import annotations

import datetime as dt


def parse_cursor(text: str) -> tuple[dt.datetime, int] | None:
    """'<ISO instant>~<id>' → (instant, id); None for anything else (a hand-edited or
    truncated link), which the lists report instead of failing."""
    when, _sep, ident = (text or "").partition("~")
    try:
        at = dt.datetime.fromisoformat(when)
        return (at, int(ident)) if at.tzinfo is not None else None
    except ValueError:
        return None


def make_cursor(at: dt.datetime, pk: int) -> str:
    return f"{at.astimezone(dt.UTC).isoformat()}~{pk}"
