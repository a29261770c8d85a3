"""Requests per token per minute, counted in the database so that every gunicorn
worker on every machine sees one count: one upsert per request, which is cheaper
than a lock and needs no cache server."""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.db import connection

from carebell import config
from carebell.api.models import ApiToken, RateWindow

WINDOW = dt.timedelta(minutes=1)
DEFAULT_PER_MINUTE = 1200
_UPSERT = (
    "INSERT INTO api_ratewindow (token_id, window_start, count) VALUES (%s, %s, 1) "
    "ON CONFLICT (token_id, window_start) DO UPDATE SET count = api_ratewindow.count + 1 "
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


def take(token: ApiToken, now: dt.datetime) -> int | None:
    """Count one request of `token`; None if allowed, else the seconds until its
    window ends (for Retry-After)."""
    start = window_of(now)
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [token.pk, connection.ops.adapt_datetimefield_value(start)])
        (count,) = cursor.fetchone()
    if count == 1:
        # A new window: the token's old ones are of no more use.
        RateWindow.objects.filter(token=token, window_start__lt=start).delete()
    if count <= per_minute():
        return None
    return max(1, math.ceil((start + WINDOW - now).total_seconds()))
