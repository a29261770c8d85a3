"""Prometheus metrics, read from the database at scrape time.

Every process (web, workers, planner) writes to the same database, so reading it
gives one consistent picture without a metrics gateway. Counters are derived from
rows that are never deleted (attempts), so they only go up.
"""

from __future__ import annotations

import datetime as dt
import hmac

from django.conf import settings
from django.db.models import Avg, Count, F, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
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


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text. With CAREBELL_METRICS_TOKEN set, scrapers must send it as a
    bearer token: the figures hold no patient data, but each scrape queries the
    database and should not be open to anyone."""
    token = settings.METRICS_TOKEN
    if token and not hmac.compare_digest(
        request.headers.get("Authorization", ""), f"Bearer {token}"
    ):
        return HttpResponse(status=401)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
