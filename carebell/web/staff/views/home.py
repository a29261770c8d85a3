"""The staff home page: what needs attention today at the current site."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from carebell.audit import trail
from carebell.core.vocab import OutboxStatus
from carebell.inbox.models import StaffNotification
from carebell.messaging.models import PENDING, InboundMessage, OutboxMessage
from carebell.web.staff import guard

STATUS_ORDER = [s.value for s in OutboxStatus]
RECENT_NOTIFICATIONS = 5


@guard.requires(guard.SIGNED_IN)
def home(request: HttpRequest) -> HttpResponse:
    site, now = request.site, timezone.now()
    context = {"now": now}
    if guard.can(request, "view_queue"):
        context.update(_queue(site, now))
    if guard.can(request, "work_inbox"):
        context.update(_inbox(site))
        trail.record(request.user, "list", object_type="inbox.staffnotification",
                     site_id=site.pk, detail={"page": "home"})  # fmt: skip
    return render(request, "staff/home.html", context)


def _local_day(site, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    day = now.astimezone(site.zone).date()
    start = dt.datetime.combine(day, dt.time(0), tzinfo=site.zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=site.zone)
    return start, end


def _queue(site, now: dt.datetime) -> dict:
    start, end = _local_day(site, now)
    today = OutboxMessage.objects.filter(site=site, planned_at__gte=start, planned_at__lt=end)
    counts = dict(today.values_list("status").annotate(n=Count("id")).order_by())
    overdue = OutboxMessage.objects.filter(site=site, status__in=PENDING, due_at__lte=now)
    failed = OutboxMessage.objects.filter(
        site=site,
        status__in=[OutboxStatus.FAILED.value, OutboxStatus.UNDELIVERED.value],
        updated_at__gte=now - dt.timedelta(hours=24),
    )
    return {
        "queue_counts": [(s, counts[s]) for s in STATUS_ORDER if counts.get(s)],
        "queue_total": sum(counts.values()),
        "oldest_due": overdue.aggregate(at=Min("due_at"))["at"],
        "overdue": overdue.count(),
        "failures": failed.count(),
        "failures_by_error": list(
            failed.values_list("error_code").annotate(n=Count("id")).order_by("-n")[:5]
        ),
    }


def _inbox(site) -> dict:
    unread = StaffNotification.objects.filter(site=site, read_at__isnull=True)
    review = InboundMessage.objects.filter(
        site=site, intent=InboundMessage.Intent.POSSIBLE_OPT_OUT, needs_review=True
    )
    return {
        "unread_count": unread.count(),
        "unread": list(unread.order_by("-created_at")[:RECENT_NOTIFICATIONS]),
        "opt_out_reviews": review.count(),
    }
