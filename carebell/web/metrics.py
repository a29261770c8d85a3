"""Prometheus metrics, read from the database at scrape time.

Every process (web, workers, planner) writes to the same database, so reading it
gives one consistent picture without a metrics gateway. Counters are derived from
rows that are never deleted (attempts), so they only go up.

Reading them aggregates the whole outbox, so a scrape is neither open nor repeated:
with debug off /metrics answers only a bearer of CAREBELL_METRICS_TOKEN (and is off,
404, without one), and one aggregate serves every scrape of a process for
CAREBELL_METRICS_CACHE_SECONDS — scrapers arriving together wait for the same one.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
import time

from django.conf import settings
from django.db.models import Avg, Count, F, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from carebell.messaging.models import DeliveryAttempt, OutboxMessage

LATENCY_WINDOW = dt.timedelta(minutes=5)


class OutboxCollector:
    def collect(self):
        now = timezone.now()
        depth = GaugeMetricFamily(
            "carebell_outbox_messages", "Outbox messages by status", labels=["status"]
        )
        for row in OutboxMessage.objects.values("status").annotate(n=Count("id")):
            depth.add_metric([row["status"]], row["n"])
        yield depth
        oldest = OutboxMessage.objects.filter(
            status__in=["scheduled", "queued"], due_at__lte=now
        ).aggregate(oldest=Min("due_at"))["oldest"]
        yield GaugeMetricFamily(
            "carebell_oldest_due_message_age_seconds",
            "Age of the oldest message that is due but not yet taken",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        sends = CounterMetricFamily(
            "carebell_send_attempts",
            "Send attempts by provider and result",
            labels=["provider", "result"],
        )
        for row in DeliveryAttempt.objects.values("provider", "status").annotate(n=Count("id")):
            sends.add_metric([row["provider"], row["status"]], row["n"])
        yield sends
        latency = GaugeMetricFamily(
            "carebell_send_latency_seconds",
            "Mean time a provider took to accept a message, over the last five minutes",
            labels=["provider"],
        )
        recent = (
            DeliveryAttempt.objects.filter(
                finished_at__gte=now - LATENCY_WINDOW, finished_at__isnull=False
            )
            .values("provider")
            .annotate(mean=Avg(F("finished_at") - F("started_at")))
        )
        for row in recent:
            mean = row["mean"]
            seconds = mean.total_seconds() if hasattr(mean, "total_seconds") else float(mean or 0)
            latency.add_metric([row["provider"]], seconds)
        yield latency


class _Aggregate:
    """The last scrape's text and when it goes stale (monotonic seconds)."""

    lock = threading.Lock()
    text = b""
    stale_at = 0.0


def forget_aggregate() -> None:
    """Drop the cached aggregate (the next scrape reads the database again)."""
    with _Aggregate.lock:
        _Aggregate.text, _Aggregate.stale_at = b"", 0.0


def _read_aggregate() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector())
    return generate_latest(registry)


def current_text() -> bytes:
    """Prometheus text, read at most once per CAREBELL_METRICS_CACHE_SECONDS."""
    seconds = settings.METRICS_CACHE_SECONDS
    if seconds <= 0:
        return _read_aggregate()
    with _Aggregate.lock:
        if time.monotonic() >= _Aggregate.stale_at:
            _Aggregate.text = _read_aggregate()
            _Aggregate.stale_at = time.monotonic() + seconds
        return _Aggregate.text


def is_authorized(request: HttpRequest, token: str) -> bool:
    sent = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(sent, f"Bearer {token}".encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text for a bearer of CAREBELL_METRICS_TOKEN (401 otherwise). Without
    a token it is open in development only: with debug off it does not exist (404)."""
    token = settings.METRICS_TOKEN
    if not token and settings.METRICS_NEED_TOKEN:
        raise Http404("metrics are off: set CAREBELL_METRICS_TOKEN")
    if token and not is_authorized(request, token):
        return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(current_text(), content_type=CONTENT_TYPE_LATEST)
