"""Requests per token per minute, counted in the database so that every gunicorn
worker on every machine sees one count, with no cache server.

Each process counts its own requests and adds them to the shared row with one
upsert every FLUSH_EVERY requests or FLUSH_SECONDS (a commit per request would cost
as much as the read it guards); once a token nears its limit, every request is
added at once, so the limit holds exactly where it matters. Between flushes the
count may lag by at most FLUSH_EVERY requests per process."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from carebell import config
from carebell.api.models import ApiToken, RateWindow

WINDOW = dt.timedelta(minutes=1)
DEFAULT_PER_MINUTE = 1200
FLUSH_EVERY = 20
FLUSH_SECONDS = 1.0
#: From this share of the limit on, each request is counted in the database at once.
EXACT_FROM = 0.8
_UPSERT = (
    "INSERT INTO api_ratewindow (token_id, window_start, count) VALUES (%s, %s, %s) "
    "ON CONFLICT (token_id, window_start) DO UPDATE SET count = api_ratewindow.count + %s "
    "RETURNING count"
)


def per_minute() -> int:
    """CAREBELL_API_REQUESTS_PER_MINUTE (a Django setting of the same name wins, for tests)."""
    configured = getattr(settings, "API_REQUESTS_PER_MINUTE", None)
    if configured is not None:
        return int(configured)
    return config.env_int("API_REQUESTS_PER_MINUTE", DEFAULT_PER_MINUTE, minimum=1)


def window_of(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


@dataclass(slots=True)
class _Count:
    window: dt.datetime
    pending: int = 0  # this process's requests not yet in the row
    known: int = 0  # the row's count at the last flush
    flushed_at: float = float("-inf")  # a new count is added at once


#: Keyed by the token's digest: unique for ever, where an id may be used again.
_counts: dict[str, _Count] = {}


def take(token: ApiToken, now: dt.datetime) -> int | None:
    """Count one request of `token`; None if allowed, else the seconds until its
    window ends (for Retry-After)."""
    start, limit = window_of(now), per_minute()
    count = _counts.get(token.secret_hash)
    if count is None or count.window != start:
        count = _counts[token.secret_hash] = _Count(start)
    count.pending += 1
    due = time.monotonic() - count.flushed_at >= FLUSH_SECONDS
    if due or count.pending >= FLUSH_EVERY or count.known + count.pending > limit * EXACT_FROM:
        count.known, count.pending = _add(token, start, count.pending), 0
        count.flushed_at = time.monotonic()
    if count.known + count.pending <= limit:
        return None
    return max(1, math.ceil((start + WINDOW - now).total_seconds()))


def _add(token: ApiToken, start: dt.datetime, requests: int) -> int:
    """Add `requests` to the token's row for the window; its new count."""
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT, [token.pk, connection.ops.adapt_datetimefield_value(start), requests, requests]
        )
        (total,) = cursor.fetchone()
    if total == requests:
        # A new window: the token's old ones are of no more use.
        RateWindow.objects.filter(token=token, window_start__lt=start).delete()
    return total
