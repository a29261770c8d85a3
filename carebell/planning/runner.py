"""Running the planner: once, continuously (one elected planner), or as a dry run."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone

from carebell.messaging.models import AutomatedMessage, PlannerLease
from carebell.outbox import OutboxWriter
from carebell.planning import appointments, daily
from carebell.planning.decisions import Decision
from carebell.planning.policies import PolicyCache
from carebell.sites.models import Site

log = logging.getLogger("carebell.planner")

LOCK_KEY = zlib.crc32(b"carebell.planner")
LEASE = dt.timedelta(minutes=2)


class PlanReport:
    """Counts of one planning pass, for logs and the command's summary: decisions
    by kind and channel or skip reason, and the outbox rows the pass handed over
    (`offered`: planned, and capped ones kept as blocked) and newly `stored` (the
    others were stored by an earlier pass)."""

    def __init__(self) -> None:
        self.planned: Counter[tuple[str, str]] = Counter()
        self.skipped: Counter[str] = Counter()
        self.segments = 0
        self.offered = 0
        self.stored = 0

    def count(self, decision: Decision) -> None:
        if decision.planned:
            self.planned[(decision.kind, decision.channel)] += 1
        else:
            for r in decision.reasons[-1:] or ():
                self.skipped[r.code.value] += 1


def plan_once(
    now: dt.datetime | None = None,
    site_ids: list[int] | None = None,
    *,
    appointments_too: bool = True,
    on_decision: Callable[[Decision], None] | None = None,
) -> PlanReport:
    """Plan every site (or some) and store what is planned. Idempotent.

    A site's steps share one SMS-cap ledger, so appointment, recall and pharmacy
    texts share one budget per patient (what an earlier pass stored is read from the
    outbox). Appointment messages are stored first. `appointments_too=False`
    skips the appointment sweep (changes are replanned when they happen; the sweep
    catches what arrived another way, and need not run every pass)."""
    now = now or timezone.now()
    report, policies = PlanReport(), PolicyCache()
    sites = Site.objects.select_related("delivery").order_by("id")
    if site_ids:
        sites = sites.filter(id__in=site_ids)
    for site in sites:
        rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
        if not rules:
            continue
        policy = policies.for_site(site)
        caps = daily.SmsCaps(site.id, now)  # one SMS budget for every kind of the site
        if appointments_too:
            steps = appointments.plan_site_appointments(site, rules, policy, now, caps=caps)
            _store(steps, OutboxWriter(now), report, on_decision)
        run_daily = daily.is_due(site, now, policy)
        _store(_daily_steps(site, rules, policy, now, run_daily, caps), OutboxWriter(now), report,
               on_decision)  # fmt: skip
        if run_daily:
            daily.mark_done(site, now, policy)
    return report


def _daily_steps(site, rules, policy, now, run_daily: bool, caps) -> Iterator[Decision]:
    """The pharmacy and greeting steps: events every pass, the daily batch when due;
    both count against the site's SMS-cap ledger, which the appointments used too."""
    yield from daily.plan_site_events(site, rules, policy, now, caps)
    if run_daily:
        yield from daily.plan_site_daily(site, rules, policy, now, caps)


def _store(decisions, writer: OutboxWriter, report: PlanReport, on_decision) -> None:
    for decision in decisions:
        report.count(decision)
        if on_decision is not None:
            on_decision(decision)
        writer.store(decision)
    writer.flush()
    report.offered += writer.offered
    report.stored += writer.stored


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


def run_forever(
    stop: threading.Event, holder: str, interval: float = 30.0, sweep_every: float = 900.0
) -> None:
    """Plan every `interval` seconds while elected; otherwise wait and try again.

    Ready notices, welcomes and the daily batch are looked at on every pass. The
    appointment sweep, which re-reads every open appointment in the horizon (about a
    minute for a million), runs every `sweep_every` seconds: changes made through
    carebell are replanned when they happen, so the sweep only catches what arrived
    another way and the days entering the horizon."""
    last_sweep = float("-inf")
    while not stop.is_set():
        with elected(holder) as won:
            if won:
                sweep = time.monotonic() - last_sweep >= sweep_every
                last_sweep = _pass(sweep) or last_sweep
        stop.wait(interval)


def _pass(sweep: bool) -> float | None:
    """One planning pass; returns when the sweep ran, if it did and succeeded."""
    started = time.monotonic()
    try:
        report = plan_once(appointments_too=sweep)
    except Exception:
        log.exception("planner.pass_failed")
        return None
    planned = sum(report.planned.values())
    log.info("planner.pass", extra={"ids": {"planned": planned, "sweep": sweep}})
    return started if sweep else None
