"""The staff reports' figures for one site and period, aggregated in the database
(GROUP BY the day in the site's time zone); Python only lays the grouped rows out
per day. Nothing here names a patient: the reports are counts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from carebell.appointments.models import Appointment
from carebell.core.vocab import AppointmentStatus, Channel, OutboxStatus
from carebell.messaging.models import OutboxMessage
from carebell.people.models import OptOutEvent

#: Statuses of messages handed to a provider: the delivery rate's denominator.
ATTEMPTED = (
    OutboxStatus.SENT.value,
    OutboxStatus.DELIVERED.value,
    OutboxStatus.UNDELIVERED.value,
    OutboxStatus.FAILED.value,
)
FAILED = (OutboxStatus.UNDELIVERED.value, OutboxStatus.FAILED.value)
TOP = 10


@dataclass(frozen=True)
class Period:
    """Local days `first`..`last` (inclusive) of a site, and their UTC bounds."""

    first: dt.date
    last: dt.date
    zone: dt.tzinfo

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time(0), tzinfo=self.zone)

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(0), tzinfo=self.zone)

    @property
    def days(self) -> list[dt.date]:
        count = (self.last - self.first).days + 1
        return [self.first + dt.timedelta(days=n) for n in range(count)]


@dataclass
class Figures:
    period: Period
    price: Decimal
    #: (day, channel, kind, status, count, segments), one per group.
    messages: list[tuple] = field(default_factory=list)
    #: day → {"confirmations", "cancellations", "no_shows"}.
    appointments: dict = field(default_factory=dict)
    #: (day, channel, count).
    opt_outs: list[tuple] = field(default_factory=list)
    failures: list[tuple[str, int]] = field(default_factory=list)
    blocks: list[tuple[str, int]] = field(default_factory=list)

    def per_day(self, pick) -> list[tuple[dt.date, int]]:
        """(day, total of `pick(row)`) for every day of the period over the message groups."""
        totals: dict[dt.date, int] = defaultdict(int)
        for row in self.messages:
            totals[row[0]] += pick(row)
        return [(day, totals.get(day, 0)) for day in self.period.days]

    def totals_by(self, index: int) -> list[tuple[str, int]]:
        totals: dict[str, int] = defaultdict(int)
        for row in self.messages:
            totals[row[index]] += row[4]
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))

    def delivery(self) -> list[tuple[dt.date, int, int]]:
        """(day, attempted, delivered) for every day."""
        attempted = dict(self.per_day(lambda r: r[4] if r[3] in ATTEMPTED else 0))
        delivered = dict(self.per_day(lambda r: r[4] if r[3] == OutboxStatus.DELIVERED else 0))
        return [(day, attempted[day], delivered[day]) for day in self.period.days]

    def sms_segments(self) -> list[tuple[dt.date, int]]:
        return self.per_day(lambda r: r[5] if r[1] == Channel.SMS and r[3] in ATTEMPTED else 0)

    def cost(self, segments: int) -> Decimal:
        return (self.price * segments).quantize(Decimal("0.01"))

    def opt_outs_per_day(self) -> list[tuple[dt.date, int]]:
        totals: dict[dt.date, int] = defaultdict(int)
        for day, _channel, count in self.opt_outs:
            totals[day] += count
        return [(day, totals.get(day, 0)) for day in self.period.days]


def figures(site, period: Period) -> Figures:
    """Every report's figures for `site` over `period` (six grouped queries)."""
    result = Figures(period, site.delivery.price_per_segment)
    messages = OutboxMessage.objects.filter(
        site=site, planned_at__gte=period.start, planned_at__lt=period.end
    )
    grouped = (
        messages.annotate(day=TruncDate("planned_at", tzinfo=period.zone))
        .values_list("day", "channel", "kind", "status")
        .annotate(count=Count("id"), segments=Sum("segments"))
        .order_by("day", "channel", "kind", "status")
    )
    result.messages = [(*row[:5], row[5] or 0) for row in grouped]
    result.appointments = _appointments(site, period)
    result.opt_outs = list(
        OptOutEvent.objects.filter(
            site=site, opted_out=True, recorded_at__gte=period.start, recorded_at__lt=period.end
        )
        .annotate(day=TruncDate("recorded_at", tzinfo=period.zone))
        .values_list("day", "channel")
        .annotate(count=Count("id"))
        .order_by("day", "channel")
    )
    failed = messages.filter(status__in=FAILED).values_list("error_code")
    result.failures = list(
        failed.annotate(count=Count("id")).order_by("-count", "error_code")[:TOP]
    )
    blocked = messages.filter(status=OutboxStatus.BLOCKED).values_list("block_reason")
    result.blocks = list(
        blocked.annotate(count=Count("id")).order_by("-count", "block_reason")[:TOP]
    )
    return result


def _appointments(site, period: Period) -> dict:
    appointments = Appointment.objects.filter(site=site)
    counts = {day: {"confirmations": 0, "cancellations": 0, "no_shows": 0} for day in period.days}
    for name, column, extra in (
        ("confirmations", "confirmed_at", {}),
        ("cancellations", "cancelled_at", {}),
        ("no_shows", "starts_at", {"status": AppointmentStatus.NO_SHOW.value}),
    ):
        rows = (
            appointments.filter(
                **{f"{column}__gte": period.start, f"{column}__lt": period.end}, **extra
            )
            .annotate(day=TruncDate(column, tzinfo=period.zone))
            .values_list("day")
            .annotate(count=Count("id"))
            .order_by("day")
        )
        for day, count in rows:
            if day in counts:
                counts[day][name] = count
    return counts
