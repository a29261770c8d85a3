"""CSV import on PostgreSQL: a patients file, then 100,000 appointment rows checked
(dry run) and applied, with the time and the memory each took.

    .venv/bin/python benchmarks/bench_csv.py [--appointments 100000] [--patients 10000]
        [--database postgres_csv] [--data-dir DIR] [--batch ROWS] [--profile FILE]

Uses a dedicated database (default `postgres_csv`, created and migrated if missing),
a data dir (default var/bench-csv, or CAREBELL_DATA_DIR) and a new site per run,
with the default appointment confirmation and reminder switched on, so the apply
plans their messages as an import in a clinic would. The files are generated under
the data dir: one contact with a mobile number per patient, appointments spread
over the coming 40 days in opening hours. Memory is the
peak of Python's allocations (tracemalloc) during a dry run of a tenth of the rows
and of all of them — the same peak means the file is streamed — and the process's
peak resident size, with DEBUG off as in production. Each step prints its wall and
CPU seconds (time.process_time: this process's CPU, which other work on a shared
machine does not blur; PostgreSQL's own CPU is not in it). `--profile FILE` keeps a
cProfile of the first apply (read it with `python -m pstats FILE`). It prints its
figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--database", default="postgres_csv")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--data-dir", default="", help="CAREBELL_DATA_DIR")
    parser.add_argument("--batch", type=int, default=0, help="rows per batch (default: ingest's)")
    parser.add_argument("--profile", default="", help="write a cProfile of the first apply here")
    parser.add_argument("--statements", type=int, default=0,
                        help="list the first apply's N costliest statement shapes")  # fmt: skip
    return parser.parse_args()


def setup(args: argparse.Namespace) -> None:
    from benchdb import ensure_database

    ensure_database(args.server, args.database)
    os.environ["CAREBELL_DATABASE_URL"] = f"{args.server}/{args.database}"
    os.environ.setdefault("CAREBELL_DEBUG", "1")
    if args.data_dir:
        os.environ["CAREBELL_DATA_DIR"] = args.data_dir
    os.environ.setdefault("CAREBELL_DATA_DIR", str(ROOT / "var" / "bench-csv"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings

    # As in production: with DEBUG on, Django keeps the text of the last 9,000 queries
    # (bulk INSERTs of a batch among them), which the memory figures would count.
    settings.DEBUG = False
    if args.batch:
        from carebell.interop.csv import ingest

        ingest.BATCH = args.batch


def make_site():
    from carebell.messaging.models import AutomatedMessage
    from carebell.planning.rules_defaults import default_rules
    from carebell.sites.models import DeliverySettings, Organization, Site

    stamp = time.strftime("%Y%m%d%H%M%S")
    org = Organization.objects.create(name=f"CSV bench {stamp}", slug=f"csv-bench-{stamp}")
    site = Site.objects.create(organization=org, name="Clinic", kind="clinic",
                               time_zone="America/New_York", phone="+12025550100")  # fmt: skip
    DeliverySettings.defaults_for(site).save()
    rules = default_rules(site)
    for rule in rules:
        rule.enabled = rule.kind in ("appt_confirmation", "appt_reminder")
    AutomatedMessage.objects.bulk_create(rules)
    return site


def write_patients(path: Path, count: int) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["patient_id", "first_name", "last_name", "birth_date", "contact_position",
                         "relationship", "mobile", "pref_reminders"])  # fmt: skip
        for n in range(count):
            writer.writerow([f"P{n}", "Avery", f"Example{n}", "2015-06-01", "1", "self",
                             f"+1202{2000000 + n:07d}", "sms"])  # fmt: skip


def write_appointments(path: Path, count: int, patients: int, today: dt.date) -> None:
    picks = random.Random(7)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["appointment_id", "patient_id", "starts_at", "duration_minutes",
                         "appointment_type", "provider_code", "location_code",
                         "status"])  # fmt: skip
        for n in range(count):
            day = today + dt.timedelta(days=1 + picks.randrange(40))
            start = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(
                minutes=15 * picks.randrange(36)
            )
            writer.writerow([f"A{n}", f"P{n % patients}", start.strftime("%Y-%m-%d %H:%M"), "15",
                             "WELL", "DRS", "MAIN", "booked"])  # fmt: skip


class Statements:
    """Statements Django sends (COPY and psycopg's own cursors are not among them) and
    the wall time spent waiting for them, by shape (the SQL with its values' place
    holders, cut short)."""

    def __init__(self) -> None:
        self.count, self.wait = 0, 0.0
        self.shapes: dict[str, list] = {}

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            self.count += 1
            self.wait += took
            shape = " ".join(str(sql).split())[:110]
            found = self.shapes.setdefault(shape, [0, 0.0])
            found[0] += 1
            found[1] += took

    def top(self, n: int) -> None:
        costliest = sorted(self.shapes.items(), key=lambda item: -item[1][1])[:n]
        for shape, (count, took) in costliest:
            print(f"    {took:6.1f} s {count:>6} × {shape}")


def timed(label: str, kind: str, path: Path, site, profile: str = "", top: int = 0, **options):
    from django.db import connection

    from carebell.interop.csv.ingest import import_csv

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    statements = Statements()
    server = backend_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as stream, connection.execute_wrapper(statements):
        if profiler is not None:
            profiler.enable()
        report = import_csv(kind, stream, site, source="csv", **options)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    server = backend_cpu() - server
    rate, per_row = (report.rows / wall if wall else 0), 1000 * used / max(report.rows, 1)
    print(f"{label:<34} {report.rows:>8,} rows {wall:7.1f} s  {rate:8,.0f} rows/s  "
          f"CPU {used:6.1f} s ({per_row:.2f} ms/row)  problems {report.problems}  "
          f"new {report.created:,}  peak RSS so far {_rss():.0f} MiB")  # fmt: skip
    print(f"{'':<34} {statements.count:,} statements, {statements.wait:.1f} s waiting for them; "
          f"PostgreSQL's CPU for this session {server:.1f} s")  # fmt: skip
    statements.top(top)
    return report


def backend_cpu() -> float:
    """CPU seconds of this session's PostgreSQL backend so far (the server is on this
    machine): with the process's own, what the step costs whatever else is running.
    The server's background writers are not in it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # another machine's server, or not allowed to look
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_of(kind: str, path: Path, site) -> float:
    """Peak MiB of Python allocations during a dry run of `path`."""
    from carebell.interop.csv.ingest import import_csv

    tracemalloc.start()
    with path.open("rb") as stream:
        import_csv(kind, stream, site, source="csv", dry_run=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024 / 1024


def main() -> None:
    args = options()
    setup(args)
    from django.conf import settings
    from django.utils import timezone

    from carebell.appointments.models import Appointment
    from carebell.messaging.models import OutboxMessage

    site = make_site()
    work = Path(settings.DATA_DIR)
    work.mkdir(parents=True, exist_ok=True)
    patients, appointments, tenth = (work / n for n in ("patients.csv", "appointments.csv",
                                                        "appointments-tenth.csv"))  # fmt: skip
    today = timezone.localdate(timezone.now(), site.zone)
    write_patients(patients, args.patients)
    write_appointments(appointments, args.appointments, args.patients, today)
    write_appointments(tenth, args.appointments // 10, args.patients, today)
    size = appointments.stat().st_size / 1024 / 1024
    from carebell.interop.csv.ingest import BATCH

    print(f"site {site.pk}; {args.patients:,} patients; {args.appointments:,} appointment rows "
          f"({size:.1f} MiB); batches of {BATCH:,}; PostgreSQL {args.database}")  # fmt: skip
    timed("patients: apply", "patients", patients, site)
    timed("appointments: dry run", "appointments", appointments, site, dry_run=True)
    timed("appointments: apply (replanning)", "appointments", appointments, site,
          profile=args.profile, top=args.statements)  # fmt: skip
    stored = Appointment.objects.filter(site=site).count()
    planned = OutboxMessage.objects.filter(site=site, status="scheduled").count()
    print(f"stored {stored:,} appointments; {planned:,} messages planned")
    timed("appointments: apply again (same)", "appointments", appointments, site)
    small, full = peak_of("appointments", tenth, site), peak_of("appointments", appointments, site)
    print(f"dry-run peak allocations: {args.appointments // 10:,} rows {small:.1f} MiB, "
          f"{args.appointments:,} rows {full:.1f} MiB")  # fmt: skip
    print(f"process peak resident size over the whole run: {_rss():.0f} MiB")


if __name__ == "__main__":
    main()
