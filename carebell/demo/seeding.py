"""Seed a demo organization: a clinic and a pharmacy full of fictional patients.

Sites, settings and rules go through the ORM; patients and everything under them are
generated in chunks and bulk-inserted (COPY on PostgreSQL), all in one transaction,
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import transaction

from carebell.core.vocab import SiteKind
from carebell.core.windows import QUIET_END, QUIET_START
from carebell.demo import data
from carebell.demo.bulk import IdAllocator, Table, writer_for_connection
from carebell.demo.generate import COLUMNS, WRITE_ORDER, DemoGenerator, SiteContext
from carebell.messaging.models import AutomatedMessage
from carebell.people.models import Patient
from carebell.sites.models import DeliverySettings, Department, Organization, ReviewLink, Site
from carebell.sites.setup import set_up_site

CHUNK_PATIENTS = 5_000
# Checking foreign keys once at the end instead of row by row halves the time of a
# large seed on PostgreSQL, but dropping them locks the tables (sites_site included)
# until commit: worth it for benchmark-sized seeds only.
SUSPEND_KEYS_FROM = 50_000
FRONT_DESK = "Front Desk"
#: The local hours in which the demo's sites may start: texts may go from 08:00 to
#: 21:00 where the recipient is (quiet hours, never relaxed) and calls from 09:00 to
#: 19:00, so a demo seeded then has texts and calls arriving at once, for hours.
DAYTIME = (dt.time(9), dt.time(17))
#: Among the zones it is night in New York, the one closest to this local time wins.
LATE_MORNING = dt.time(11)


class DatabaseNotEmpty(Exception):
    """The database already holds patients and the caller did not force seeding."""


@dataclass
class SeedReport:
    organization: Organization
    clinic: Site
    pharmacy: Site
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def seed_demo(
    patients: int,
    seed: int,
    now: dt.datetime,
    force: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Create the demo organization with `patients` patients (half at the clinic,
    half at the pharmacy). Refuses a database that has patients unless `force`."""
    started = time.monotonic()
    with transaction.atomic():
        existing = Patient.objects.count() if not force else 0
        if existing:
            raise DatabaseNotEmpty(existing)
        organization, clinic, pharmacy = create_sites(now)
        report = SeedReport(organization, clinic, pharmacy)
        enable_default_rules([clinic, pharmacy])
        _generate(report, patients, seed, now, on_progress or (lambda n: None))
    report.seconds = time.monotonic() - started
    return report


def create_sites(now: dt.datetime) -> tuple[Organization, Site, Site]:
    suffix = _free_suffix()
    organization = Organization.objects.create(
        name=data.ORGANIZATION_NAME + (f" {suffix}" if suffix else ""),
        slug=data.ORGANIZATION_SLUG + (f"-{suffix}" if suffix else ""),
    )
    zone = choose_time_zone(now)
    clinic = _site(organization, data.CLINIC_NAME, SiteKind.CLINIC, data.CLINIC_PHONE, zone)
    pharmacy = _site(organization, data.PHARMACY_NAME, SiteKind.PHARMACY, data.PHARMACY_PHONE, zone)
    return organization, clinic, pharmacy


def choose_time_zone(now: dt.datetime) -> str:
    """Where the demo sites (and so their patients, who have no zone of their own)
    run: New York when it is daytime there, else the zone of DAYTIME_ZONES where it
    is closest to late morning, so whoever tries the demo, at whatever hour, gets
    texts and calls at once without quiet hours being bent."""
    if is_daytime(data.TIME_ZONE, now):
        return data.TIME_ZONE
    return min(data.DAYTIME_ZONES, key=lambda zone: _minutes_from_late_morning(zone, now))


def is_daytime(zone: str, now: dt.datetime) -> bool:
    return DAYTIME[0] <= now.astimezone(ZoneInfo(zone)).time() < DAYTIME[1]


def _minutes_from_late_morning(zone: str, now: dt.datetime) -> int:
    local = now.astimezone(ZoneInfo(zone))
    minutes = local.hour * 60 + local.minute - (LATE_MORNING.hour * 60 + LATE_MORNING.minute)
    return min(minutes % 1440, -minutes % 1440)


def describe_clock(site: Site, now: dt.datetime) -> str:
    """One line for the demo's screen: the sites' zone, its time now, and whether
    texts and calls can go out at once there."""
    local = now.astimezone(site.zone)
    where = f"The demo sites run on {site.time_zone} time, where it is {local:%H:%M} now"
    if QUIET_START <= local.time() < QUIET_END:
        return f"{where}, so texts go out at once (calls from 09:00 to 19:00)."
    return (
        f"{where}: texts and calls wait for {QUIET_START:%H:%M} there (quiet hours) and "
        "email goes at once. Seed an empty data dir to get sites where it is daytime."
    )


def _free_suffix() -> int:
    suffix = 0
    while Organization.objects.filter(
        slug=data.ORGANIZATION_SLUG + (f"-{suffix}" if suffix else "")
    ).exists():
        suffix += 1
    return suffix


def _site(organization: Organization, name: str, kind: SiteKind, phone: str, zone: str) -> Site:
    handle = name.lower().replace(" ", "-")
    site = Site.objects.create(
        organization=organization,
        name=name,
        kind=kind,
        time_zone=zone,
        phone_region="US",
        phone=phone,
        address="100 Maple Avenue, Springfield",
        **_senders(organization, kind, phone),
    )
    front_desk = Department.objects.create(
        site=site, name=FRONT_DESK, email=f"frontdesk.{kind.value}@example.org"
    )
    set_up_site(site)
    DeliverySettings.objects.filter(site=site).update(cancellation_department=front_desk)
    ReviewLink.objects.create(
        site=site,
        label="Our review page",
        url=f"https://example.org/reviews/{handle}",
        is_default=True,
    )
    ReviewLink.objects.create(
        site=site, label="Community board", url=f"https://example.com/places/{handle}"
    )
    return site


def _senders(organization: Organization, kind: SiteKind, phone: str) -> dict[str, str]:
    """The demo site's sending identities. A sender belongs to one organization, so a
    further demo organization (--force) sends from carebell's default senders."""
    if organization.slug != data.ORGANIZATION_SLUG:
        return {}
    return {"sms_from": phone, "email_from": f"{kind.value}@example.org", "caller_id": phone}


def enable_default_rules(sites: list[Site]) -> None:
    """The demo should have something to send: turn on the rules every site gets."""
    AutomatedMessage.objects.filter(site__in=sites).update(enabled=True)


def _generate(report, patients, seed, now, on_progress) -> None:
    writer = writer_for_connection()
    tables = {model: Table(model, columns, now) for model, columns in COLUMNS.items()}
    generator = DemoGenerator(random.Random(seed), IdAllocator(writer.reserve), tables, now)
    clinic, pharmacy = (_context(s, now) for s in (report.clinic, report.pharmacy))
    wording = data.CONSENT_WORDING.format(site=report.pharmacy.name)

    def flush(count: int) -> None:
        for model in WRITE_ORDER:
            rows = generator.rows[model]
            writer.write(tables[model], rows)
            report.rows[model._meta.label] = report.rows.get(model._meta.label, 0) + len(rows)
            rows.clear()
        on_progress(count)

    if patients >= SUSPEND_KEYS_FROM:
        with writer.foreign_keys_suspended(list(tables.values())):
            _fill_sites(generator, clinic, pharmacy, wording, patients, flush)
    else:
        _fill_sites(generator, clinic, pharmacy, wording, patients, flush)


def _fill_sites(generator, clinic, pharmacy, wording, patients, flush) -> None:
    clinic_target = patients // 2
    pending = done = 0
    while done < clinic_target:
        made = generator.clinic_family(clinic, clinic_target - done)
        done, pending = done + made, pending + made
        if pending >= CHUNK_PATIENTS:
            flush(pending)
            pending = 0
    for _ in range(patients - clinic_target):
        generator.pharmacy_patient(pharmacy, wording)
        pending += 1
        if pending >= CHUNK_PATIENTS:
            flush(pending)
            pending = 0
    flush(pending)


def _context(site: Site, now: dt.datetime) -> SiteContext:
    return SiteContext(site.id, site.name, site.zone, now.astimezone(site.zone).date())
