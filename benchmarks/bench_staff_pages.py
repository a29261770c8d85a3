"""Server time and queries of the staff app's big pages on PostgreSQL.

    .venv/bin/python benchmarks/bench_staff_pages.py [--messages 200000] [--patients 20000]

Uses a dedicated database (default `carebell_bench_staff`, created and migrated if
missing). Seeds the demo organization with `carebell seed-demo`'s bulk machinery
(`--patients`, half at the clinic) and `--messages` outbox rows at the clinic through
the outbox's bulk writer (OutboxWriter: COPY), planned over the coming 60 days with a
mix of methods and kinds. Then, signed in as a front-desk person through Django's test
client (the whole request: middleware, guard, audit entry, template), it times the
queue's first page, its 1,000th page (followed by cursor), a filtered queue (one
method and kind), the patients list and a patient's messaging panel, and prints p50/p95
server time and the queries each page ran. It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database", default="carebell_bench_staff")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    return parser.parse_args()


def setup(args: argparse.Namespace) -> None:
    from benchdb import ensure_database

    ensure_database(args.server, args.database)
    os.environ["CAREBELL_DATABASE_URL"] = f"{args.server}/{args.database}"
    os.environ.setdefault("CAREBELL_DEBUG", "1")
    os.environ.setdefault("CAREBELL_DATA_DIR", str(ROOT / "var" / "bench-staff"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(args: argparse.Namespace):
    from django.utils import timezone

    from carebell.demo.seeding import seed_demo
    from carebell.messaging.models import OutboxMessage
    from carebell.sites.models import Site

    site = Site.objects.filter(kind="clinic").order_by("id").first()
    if site is None:
        started = time.monotonic()
        report = seed_demo(args.patients, seed=1, now=timezone.now())
        site = report.clinic
        print(f"seeded {args.patients} patients in {time.monotonic() - started:.0f} s")
    have = OutboxMessage.objects.filter(site=site).count()
    if have < args.messages:
        started = time.monotonic()
        write_messages(site, have, args.messages)
        print(f"wrote {args.messages - have} outbox rows in {time.monotonic() - started:.0f} s")
    return site


def write_messages(site, start: int, end: int) -> None:
    import datetime as dt

    from django.db import transaction
    from django.utils import timezone

    from carebell.outbox import OutboxWriter
    from carebell.people.models import Patient
    from carebell.planning.decisions import Decision

    now = timezone.now()
    patients = list(
        Patient.objects.filter(site=site).values_list("id", "first_name", "last_name")[:50_000]
    )
    kinds = ["appt_reminder", "appt_confirmation", "recall", "birthday", "general"]
    channels = ["sms", "sms", "email", "call"]
    with transaction.atomic():
        writer = OutboxWriter(now)
        for i in range(start, end):
            pid, first, last = patients[i % len(patients)]
            writer.add(
                Decision(
                    status="planned", kind=kinds[i % 5], channel=channels[i % 4],
                    site_id=site.id, patient_id=pid, contact_id=None, contact_point_id=None,
                    to=f"+1202555{i % 10_000:04d}", entity_type="patient", entity_id=pid,
                    event_at=None, planned_at=now + dt.timedelta(seconds=(i * 26) % 5_184_000),
                    entity_name=f"{first} {last}", dedupe_key=f"bench-staff:{i}",
                    priority=5 if i % 7 else 3,
                )
            )  # fmt: skip
        writer.flush()


def measure(client, url: str, repeat: int) -> tuple[float, float, float, float, int]:
    """p50 and p95 server time, p50 CPU time of this process (steadier than wall time
    on a shared machine), p50 SQL time, and the queries of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, cpu, sql, queries = [], [], [], 0
    for run in range(repeat + 2):
        with CaptureQueriesContext(connection) as captured:
            started, used = time.perf_counter(), time.process_time()
            response = client.get(url)
            elapsed, spent = time.perf_counter() - started, time.process_time() - used
        assert response.status_code == 200, (url, response.status_code)
        if run >= 2:  # two warm-ups
            times.append(elapsed * 1000)
            cpu.append(spent * 1000)
            sql.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
            queries = len(captured)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times), p95, statistics.median(cpu), statistics.median(sql), queries


def cursor_of_page(site, page: int, size: int) -> str:
    from urllib.parse import urlencode

    from carebell.messaging.models import OutboxMessage
    from carebell.web.staff.cursors import make_cursor

    rows = OutboxMessage.objects.filter(site=site).order_by("planned_at", "id")
    page = min(page, max(2, rows.count() // size))
    last = rows.only("id", "planned_at")[(page - 1) * size - 1]  # setup only, not timed
    return urlencode({"date_from": "2000-01-01", "after": make_cursor(last.planned_at, last.pk)})


def main() -> None:
    args = options()
    setup(args)
    site = seed(args)
    from benchdb import vacuum_analyze

    vacuum_analyze(os.environ["CAREBELL_DATABASE_URL"])  # the seed's and earlier runs' rows
    from django.test import Client

    from carebell.messaging.models import OutboxMessage
    from carebell.people.models import Patient
    from carebell.sites.models import Site, StaffMembership
    from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF
    from carebell.web.staff.views.queue import PAGE_SIZE
    from tests import factories

    user = factories.make_staff(site, FRONT_DESK, username=f"bench{time.time_ns()}")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    pharmacy = Site.objects.get(organization_id=site.organization_id, kind="pharmacy")
    pharmacist = factories.make_staff(pharmacy, PHARMACY_STAFF, username=f"rx{time.time_ns()}")
    at_counter = Client(HTTP_HOST="localhost")
    at_counter.force_login(pharmacist)
    # A pharmacy patient with prescriptions: their forecast runs every pharmacy planner.
    customer = (
        Patient.objects.filter(site=pharmacy, prescriptions__isnull=False).order_by("id").first()
    )
    busiest = (
        OutboxMessage.objects.filter(site=site, patient__isnull=False)
        .values_list("patient_id", flat=True)
        .first()
    )
    patient = Patient.objects.get(pk=busiest)
    rows = OutboxMessage.objects.filter(site=site).count()
    print(f"site {site.name}: {rows} outbox rows, {Patient.objects.filter(site=site).count()} "
          f"patients; {args.repeat} requests each")  # fmt: skip
    pages = [
        ("queue, first page", "/staff/queue/?date_from=2000-01-01"),
        ("queue, page 1,000 by cursor", f"/staff/queue/?{cursor_of_page(site, 1000, PAGE_SIZE)}"),
        ("queue, email recalls", "/staff/queue/?date_from=2000-01-01&channel=email&kind=recall"),
        ("queue, scheduled today", "/staff/queue/"),
        ("patients, first page", "/staff/patients/"),
        ("patients, name search", "/staff/patients/?name=Ga"),
        ("patient panel", f"/staff/patients/{patient.pk}/"),
    ]
    if customer is not None:
        pages.append(("patient panel, pharmacy", f"/staff/patients/{customer.pk}/", at_counter))
    print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'CPU p50':>8} {'SQL p50':>8} {'queries':>8}")
    for label, url, *who in pages:
        p50, p95, cpu, sql, queries = measure(who[0] if who else client, url, args.repeat)
        print(f"{label:32} {p50:8.1f} {p95:8.1f} {cpu:8.1f} {sql:8.1f} {queries:8d}")
    StaffMembership.objects.filter(user__in=[user, pharmacist]).delete()


if __name__ == "__main__":
    main()
