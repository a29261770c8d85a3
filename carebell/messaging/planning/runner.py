"""Running the planner: once, continuously (one elected planner), or as a dry run."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone

from carebell.core.reasons import Code
from carebell.messaging.models import AutomatedMessage, PlannerLease
from carebell.messaging.planning import appointments, daily
from carebell.messaging.planning.decisions import Decision
from carebell.messaging.planning.writer import OutboxWriter
from carebell.messaging.policies import PolicyCache
from carebell.sites.models import Site

log = logging.getLogger("carebell.planner")

LOCK_KEY = zlib.crc32(b"carebell.planner")
LEASE = dt.timedelta(minutes=2)


class PlanReport:
    """Counts of one planning pass, for logs and the command's summary."""

    def __init__(self) -> None:
        self.planned: Counter[tuple[str, str]] = Counter()
        self.skipped: Counter[str] = Counter()
        self.segments = 0

    def count(self, decision: Decision) -> None:
        if decision.planned:
            self.planned[(decision.kind, decision.channel)] += 1
        else:
            for r in decision.reasons[-1:] or ():
                self.skipped[r.code.value] += 1


def decisions_for_site(
    site: Site,
    policies: PolicyCache,
    now: dt.datetime,
    until: dt.datetime | None = None,
    *,
    start: dt.datetime | None = None,
    daily_batch: bool = True,
) -> Iterator[Decision]:
    """Every planning decision for one site: appointments, and the daily batch when
    its time has come (or always, for a dry run over a period)."""
    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    if not rules:
        return
    policy = policies.for_site(site)
    yield from appointments.plan_site_appointments(site, rules, policy, now, until, start=start)
    caps = daily.SmsCaps(site.id, now)
    yield from daily.plan_site_events(site, rules, policy, now, caps)
    if daily_batch:
        yield from daily.plan_site_daily(site, rules, policy, now, caps)


def plan_once(
    now: dt.datetime | None = None,
    site_ids: list[int] | None = None,
    *,
    on_decision: Callable[[Decision], None] | None = None,
) -> PlanReport:
    """Plan every site (or some) and store what is planned. Idempotent."""
    now = now or timezone.now()
    report, policies = PlanReport(), PolicyCache()
    sites = Site.objects.select_related("delivery").order_by("id")
    if site_ids:
        sites = sites.filter(id__in=site_ids)
    for site in sites:
        writer = OutboxWriter(now)
        run_daily = daily.is_due(site, now, policies.for_site(site))
        for decision in decisions_for_site(site, policies, now, daily_batch=run_daily):
            report.count(decision)
            if on_decision is not None:
                on_decision(decision)
            if decision.planned:
                writer.add(decision)
            elif is_capped(decision):
                writer.add_capped(decision)
        writer.flush()
        if run_daily:
            daily.mark_done(site, now, policies.for_site(site))
    return report


def is_capped(decision: Decision) -> bool:
    """A message the SMS caps found no room for before its event."""
    return bool(decision.to and decision.dedupe_key) and any(
        r.code is Code.CAP_NO_ROOM for r in decision.reasons
    )


@contextmanager
def elected(holder: str) -> Iterator[bool]:
    """True inside when this process is the one planner. PostgreSQL: a session
    advisory lock, released if the process dies. Elsewhere: a lease row."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            won = cursor.fetchone()[0]
        try:
            yield won
        finally:
            if won:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return
    yield _take_lease(holder)


def _take_lease(holder: str) -> bool:
    now = timezone.now()
    with transaction.atomic():
        lease, _ = PlannerLease.objects.select_for_update().get_or_create(
            name="planner", defaults={"holder": holder, "expires_at": now + LEASE}
        )
        if lease.holder != holder and lease.expires_at > now:
            return False
        lease.holder, lease.expires_at = holder, now + LEASE
        lease.save(update_fields=["holder", "expires_at"])
    return True


def run_forever(stop: threading.Event, holder: str, interval: float = 30.0) -> None:
    """Plan every `interval` seconds while elected; otherwise wait and try again."""
    while not stop.is_set():
        with elected(holder) as won:
            if won:
                try:
                    report = plan_once()
                    log.info(
                        "planner.pass", extra={"ids": {"planned": sum(report.planned.values())}}
                    )
                except Exception:
                    log.exception("planner.pass_failed")
        stop.wait(interval)
