"""Planning throughput on PostgreSQL against a raw COPY of the same outbox rows.

    .venv/bin/python benchmarks/bench_plan.py [--appointments 1000000] [--reseed]

Uses a dedicated database (default `carebell_plan_bench`, made with createdb and
migrated if missing). Seeds M appointments over the next 30 days at one clinic
(America/New_York), one patient each with one contact (a fictional mobile
+1 NPA 555-01xx, preference reminders = sms, SMS consent), by COPY, and enables one
rule: an appointment reminder 1 day before. A later run reuses the seed when it
still has M appointments, all at least a day ahead (--reseed forces a new one).
Then, in the same run, each from a checkpoint:

(a) COPY: the outbox rows the planner writes (the columns of outbox._copy.COLUMNS, the
    same values, built beforehand as COPY text) into messaging_outboxmessage in one
    transaction; then the table is emptied;
(b) the planner: runner.plan_once for the site, as `carebell plan` runs it (reads
    appointments and contacts, decides with the rules core, keeps to the SMS caps,
    writes the outbox). The caps read each day's patients' stored texts, one query
    per 20,000 patients; every patient here has one appointment, so no text is
    deferred and both write the same rows.

Prints rows/s of both, the ratio (goal: planner >= 0.5 x COPY), the CPU of this
process and of the database's PostgreSQL backends during each, and whether both
wrote the same rows (a fingerprint over every written column). --repeat N runs N
pairs (the machine is shared: repeat a disturbed figure). Asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdb import backend_pids
from procstat import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
CAREBELL = str(Path(sys.executable).with_name("carebell"))
ZONE = "America/New_York"
DAYS = 30
SLOTS = 40  # 15-minute slots from 08:00 local
# NANP area codes without N11 service codes; 555-0100…0199 is fictional in each.
AREA_CODES = [n for n in range(201, 1000) if n % 100 != 11 and (n // 10) % 10 != 9]
NUMBERS = len(AREA_CODES) * 100
EMPTIED = """TRUNCATE messaging_outboxsubject, messaging_messageevent,
    messaging_deliveryattempt, messaging_providerevent, inbox_reply, messaging_outboxmessage"""


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--database", default="carebell_plan_bench")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--reseed", action="store_true", help="seed even if reusable")
    parser.add_argument("--repeat", type=int, default=1, help="COPY/planner pairs to run")
    return parser.parse_args()


def prepare_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if not exists:
        host = psycopg.conninfo.conninfo_to_dict(server)
        createdb = [
            "createdb",
            "-h",
            host.get("host", "127.0.0.1"),
            "-p",
            str(host.get("port", 5432)),
        ]
        subprocess.run([*createdb, "-U", host.get("user", "postgres"), name], check=True)
    subprocess.run([CAREBELL, "migrate", "-v", "0"], env=os.environ, check=True, cwd=ROOT)


def setup_django(url: str) -> None:
    os.environ.update(
        {
            "CAREBELL_DATABASE_URL": url,
            "CAREBELL_LOG_LEVEL": "warning",
            # DEBUG off: Django would keep every query in memory.
            "CAREBELL_DEBUG": "0",
            "CAREBELL_SECRET_KEY": os.environ.get("CAREBELL_SECRET_KEY", "bench-" + "x" * 50),
            "DJANGO_SETTINGS_MODULE": "carebell.settings",
        }
    )


# Seeding ---------------------------------------------------------------------------------------


def phone(i: int) -> str:
    return f"+1{AREA_CODES[(i // 100) % len(AREA_CODES)]}55501{i % 100:02d}"


def starts_at(i: int, m: int, first_day: dt.date, zone) -> dt.datetime:
    """Appointment i of m: days in order, so each day's numbers are distinct (a shared
    number on one day would make the planner combine the messages as siblings)."""
    day = i * DAYS // m
    first_of_day = -(-day * m // DAYS)
    slot = (i - first_of_day) % SLOTS
    wall = dt.datetime.combine(first_day + dt.timedelta(days=day), dt.time(8))
    local = (wall + dt.timedelta(minutes=15 * slot)).replace(tzinfo=zone)
    return local.astimezone(dt.UTC)


def make_site():
    from carebell.core.vocab import Kind
    from carebell.messaging.models import AutomatedMessage
    from carebell.sites.models import DeliverySettings, Organization, Site

    org = Organization.objects.create(name="Bench", slug="bench")
    site = Site.objects.create(
        organization=org, name="Bench Clinic", kind="clinic", time_zone=ZONE,
        phone="+12025550100", sms_from="+12025550199", email_from="hello@example.org",
    )  # fmt: skip
    DeliverySettings.defaults_for(site).save()
    AutomatedMessage.objects.create(
        site=site, kind=Kind.APPT_REMINDER, name="Reminder", enabled=True, offsets=[{"days": 1}]
    )
    return site


def seed(m: int, now: dt.datetime) -> None:
    from django.db import connection, transaction

    from carebell.appointments.models import Appointment
    from carebell.demo.bulk import PostgresWriter, Table
    from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient
    from carebell.sites.models import Organization

    if m > NUMBERS * DAYS:
        raise SystemExit(f"at most {NUMBERS * DAYS} appointments (distinct numbers per day)")
    with connection.cursor() as cursor:
        cursor.execute(f"{EMPTIED}, {Organization._meta.db_table} RESTART IDENTITY CASCADE")
    zone = ZoneInfo(ZONE)
    first_day = now.astimezone(zone).date() + dt.timedelta(days=2)
    tables = {
        "patient": Table(Patient, ["site_id", "source", "external_id", "first_name",
                                   "last_name", "consented_at"], now),
        "contact": Table(Contact, ["patient_id", "position", "relationship", "first_name",
                                   "last_name"], now),
        "point": Table(ContactPoint, ["contact_id", "kind", "value", "raw_value",
                                      "consent_sms"], now),
        "preference": Table(ContactPreference, ["contact_id", "category", "value"], now),
        "appointment": Table(Appointment, ["site_id", "patient_id", "source", "external_id",
                                           "starts_at", "appointment_type", "provider_code",
                                           "location_code"], now),
    }  # fmt: skip
    with transaction.atomic():
        site = make_site()
        writer = PostgresWriter()
        with writer.foreign_keys_suspended(list(tables.values())):
            for lo in range(0, m, 50_000):
                _seed_block(writer, tables, site.id, range(lo, min(m, lo + 50_000)), m, first_day)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _seed_block(writer, tables, site_id, block: range, m: int, first_day: dt.date) -> None:
    zone = ZoneInfo(ZONE)
    rows: dict[str, list[tuple]] = {name: [] for name in tables}
    ids = {name: writer.reserve(table, len(block)) for name, table in tables.items()}
    for k, i in enumerate(block):
        pid, cid = ids["patient"][k], ids["contact"][k]
        number = phone(i % NUMBERS)
        rows["patient"].append((pid, site_id, "bench", f"P{i}", "Avery", f"Example{i}", None))
        rows["contact"].append((cid, pid, 1, "self", "Avery", f"Example{i}"))
        rows["point"].append((ids["point"][k], cid, "mobile", number, number, True))
        rows["preference"].append((ids["preference"][k], cid, "reminders", "sms"))
        start = starts_at(i, m, first_day, zone)
        rows["appointment"].append(
            (ids["appointment"][k], site_id, pid, "bench", f"A{i}", start, "checkup", "r", "m")
        )
    for name, table in tables.items():
        writer.write(table, rows[name])


def reusable(m: int, now: dt.datetime) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), min(starts_at) FROM appointments_appointment"
            " WHERE site_id = (SELECT id FROM sites_site WHERE name = 'Bench Clinic')"
        )
        count, first = cursor.fetchone()
    return count == m and first is not None and first > now + dt.timedelta(days=1)


# (a) the same rows by COPY ---------------------------------------------------------------------

_ROWS = """
SELECT a.id, a.patient_id, a.starts_at, p.first_name || ' ' || p.last_name, c.id, m.id, m.value
FROM appointments_appointment a
JOIN people_patient p ON p.id = a.patient_id
JOIN people_contact c ON c.patient_id = p.id
JOIN people_contactpoint m ON m.contact_id = c.id AND m.kind = 'mobile'
ORDER BY a.starts_at, a.id
"""


def copy_text(site, now: dt.datetime) -> list[bytes]:
    """The rows the planner writes for this seed, as COPY text in ~1 MB blocks: the
    rules core gives the planned time and reasons, the rest is the seed's."""
    import json

    from django.db import connection

    from carebell.core.timing import AppointmentFacts, Offset, plan_appointment_message
    from carebell.core.vocab import Channel
    from carebell.messaging.models import AutomatedMessage
    from carebell.outbox import reasons_json
    from carebell.planning.policies import PolicyCache

    rule = AutomatedMessage.objects.get(site=site)
    policy = PolicyCache().for_site(site)
    stamp = now.isoformat()
    blocks, lines = [], []
    with connection.cursor() as cursor:
        cursor.execute(_ROWS)
        for aid, pid, start, name, cid, point_id, to in cursor.fetchall():
            facts = AppointmentFacts(aid, pid, site.id, start)
            plan = plan_appointment_message(policy, Channel.SMS, facts, Offset(1), now)
            key = f"r{rule.id}:1d:sms:{to}:a{aid}@{int(start.timestamp())}"
            at = plan.at.isoformat()
            reasons = json.dumps(reasons_json(plan.reasons))
            lines.append(
                f"{site.id}\t{pid}\t{cid}\t{point_id}\t{to}\tsms\tappt_reminder\t5\t{rule.id}\t"
                f"en\tappointment\t{aid}\t{name}\t[]\t{start.isoformat()}\t{start.isoformat()}\t"
                f"{key}\t{at}\t{at}\tscheduled\t\t{reasons}\t\t\t\t0\t0\t\t\t\t\t{stamp}\t{stamp}\n"
            )
            if len(lines) == 5_000:
                blocks.append("".join(lines).encode())
                lines = []
    blocks.append("".join(lines).encode())
    return blocks


def run_copy(blocks: list[bytes]) -> float:
    from django.db import connection, transaction

    from carebell.outbox._copy import COLUMNS, TABLE

    started = time.perf_counter()
    statement = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for block in blocks:
            copy.write(block)
    return time.perf_counter() - started


# (b) the planner -------------------------------------------------------------------------------


def run_planner(site, now: dt.datetime) -> tuple[float, object]:
    from carebell.planning import runner

    started = time.perf_counter()
    report = runner.plan_once(now, site_ids=[site.id])
    return time.perf_counter() - started, report


# Measuring -------------------------------------------------------------------------------------


def fingerprint() -> tuple[int, int]:
    """Row count and a sum of hashes over every column the planner writes."""
    from django.db import connection

    from carebell.outbox._copy import COLUMNS, TABLE

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(sum(hashtextextended(concat_ws('|', "
            f"{', '.join(f'{c}::text' for c in COLUMNS)}), 0)), 0) FROM {TABLE}"
        )
        return cursor.fetchone()


def checkpoint() -> None:
    """A clean start for a timed phase."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


class BackendCpu:
    """CPU of every PostgreSQL backend connected to the database (the planner's
    write-behind opens its own), sampled from /proc while a phase runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()

    def __enter__(self) -> BackendCpu:
        self.conn = psycopg.connect(self.url, autocommit=True)
        self.sample(first=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()
        self.conn.close()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self.sample()

    def sample(self, first: bool = False) -> None:
        for pid in backend_pids(self.conn.cursor()):
            seconds = cpu_seconds(pid)
            if first:
                self.first[pid] = seconds
            if seconds:
                self.last[pid] = seconds

    def total(self) -> float:
        return sum(seconds - self.first.get(pid, 0.0) for pid, seconds in self.last.items())


def timed(label: str, run, url: str) -> tuple[float, tuple]:
    checkpoint()
    own0 = time.process_time()
    with BackendCpu(url) as backends:
        seconds, *extra = run()
    own = time.process_time() - own0
    rows, digest = fingerprint()
    rate = rows / seconds
    print(
        f"{label:<8} {rows:>9,} rows in {seconds:6.2f} s = {rate:>7,.0f} rows/s"
        f"   CPU: this process {own:6.2f} s, PostgreSQL backends {backends.total():6.2f} s"
    )
    return rate, (rows, digest, *extra)


def main() -> None:
    args = options()
    url = f"{args.server}/{args.database}"
    setup_django(url)
    prepare_database(args.server, args.database)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from carebell.sites.models import Site

    now = timezone.now().replace(microsecond=0)
    started = time.perf_counter()
    if args.reseed or not reusable(args.appointments, now):
        seed(args.appointments, now)
        print(
            f"seeded   {args.appointments:,} appointments in {time.perf_counter() - started:.1f} s"
        )
    site = Site.objects.select_related("delivery").get(name="Bench Clinic")
    with connection.cursor() as cursor:
        cursor.execute(EMPTIED)
    blocks = copy_text(site, now)
    size = sum(map(len, blocks)) / 1e6
    print(f"M = {args.appointments:,} appointments, {size:.0f} MB of COPY text")
    best = [0.0, 0.0]
    for _ in range(args.repeat):
        copy_rate, copied = timed("COPY", lambda: (run_copy(blocks),), url)
        with connection.cursor() as cursor:
            cursor.execute(EMPTIED)
        gc.collect()
        plan_rate, planned = timed("planner", lambda: run_planner(site, now), url)
        print(f"planner / COPY = {plan_rate / copy_rate:.2f} (goal >= 0.50)")
        same = copied[:2] == planned[:2]
        print(f"same rows: {'yes' if same else 'NO'}; planned {dict(planned[2].planned)}")
        if planned[2].skipped:
            print(f"skipped {dict(planned[2].skipped)}")
        best = [max(best[0], copy_rate), max(best[1], plan_rate)]
        with connection.cursor() as cursor:
            cursor.execute(EMPTIED)
    if args.repeat > 1:
        print(
            f"best of {args.repeat}: COPY {best[0]:,.0f} rows/s, planner {best[1]:,.0f} rows/s,",
            f"ratio {best[1] / best[0]:.2f}",
        )


if __name__ == "__main__":
    main()
