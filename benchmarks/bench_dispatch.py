"""Dispatch throughput on PostgreSQL: N due SMS to the loopback sim, end to end.

    .venv/bin/python benchmarks/bench_dispatch.py [--messages 20000] [--workers 2]

Uses a dedicated database (default `carebell_bench`, created and migrated if
missing). Seeds N patients with an appointment each and one reminder due now
(rendered at send time from the default template), starts the sim in its own
process (Twilio-shaped API, no callbacks) and `carebell worker` processes, and
measures in steady state (from 5% sent to the last message recorded):
messages/s, database commits per message (pg_stat_database.xact_commit), CPU per
message (/proc) across workers, sim, this database's PostgreSQL backends (not the
script's own monitoring connection) and the server's own processes (postmaster, WAL
writer, checkpointer: shared with any other database's work at the time), and the
workers' peak resident memory (VmHWM). Prints the figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdb import ensure_database
from procstat import CpuMeter, peak_rss_mb, pids_named

ROOT = Path(__file__).resolve().parent.parent
CAREBELL = str(Path(sys.executable).with_name("carebell"))
PENDING = "status IN ('scheduled', 'queued', 'sending')"


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database", default="carebell_bench")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    return parser.parse_args()


def prepare_database(server: str, name: str, env: dict[str, str]) -> None:
    ensure_database(server, name)
    subprocess.run([CAREBELL, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)


SEED = """
TRUNCATE messaging_messageevent, messaging_deliveryattempt, messaging_outboxsubject,
         messaging_providerevent, messaging_outboxmessage, appointments_appointment,
         people_contactpoint, people_contactpreference, people_contact, people_patient,
         messaging_senderpace CASCADE;
INSERT INTO people_patient (created_at, updated_at, source, external_id, first_name, last_name,
                            language, is_active, site_id)
SELECT now(), now(), 'bench', 'B' || g, 'Avery', 'Example' || g, 'en', true, %(site)s
FROM generate_series(1, %(n)s) g;
INSERT INTO appointments_appointment (created_at, updated_at, source, external_id, starts_at,
    duration_minutes, appointment_type, provider_code, provider_name, location_code,
    location_name, status, patient_id, site_id)
SELECT now(), now(), 'bench', 'A' || p.id, now() + interval '1 day', 20, 'checkup', 'r',
       'Dr. Rivera', 'm', 'Main Street', 'booked', p.id, p.site_id
FROM people_patient p WHERE p.site_id = %(site)s;
INSERT INTO messaging_outboxmessage (site_id, patient_id, to_address, channel, kind, priority,
    language, entity_type, entity_id, entity_name, entity_ids, event_at, planned_at, due_at,
    status, block_reason, reasons, subject, body, html_body, segments, attempts, provider,
    provider_message_id, error_code, error_message, created_at, updated_at)
SELECT a.site_id, a.patient_id, '+1202' || lpad((a.id %% 10000000)::text, 7, '0'), 'sms',
       'appt_reminder', 5, 'en', 'appointment', a.id, 'Avery Example', '[]', a.starts_at,
       now(), now(), 'scheduled', '', '[]', '', '', '', 0, 0, '', '', '', '', now(), now()
FROM appointments_appointment a WHERE a.site_id = %(site)s;
"""


def seed(conn: psycopg.Connection, n: int) -> int:
    """A site open around the clock (UTC, 00:00-23:59 is still cut by quiet hours,
    so the zone is chosen where it is daytime now) and N due reminders."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    zones = ("America/New_York", "Europe/Paris", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Honolulu")
    now = datetime.now(UTC)
    zone = next(z for z in zones if 10 <= now.astimezone(ZoneInfo(z)).hour < 18)
    row = conn.execute("SELECT id FROM sites_site WHERE name = 'Bench Clinic'").fetchone()
    if row is None:
        subprocess.run([CAREBELL, "shell", "-c", SITE_SCRIPT], env=os.environ, check=True, cwd=ROOT)
        row = conn.execute("SELECT id FROM sites_site WHERE name = 'Bench Clinic'").fetchone()
    site = row[0]
    conn.execute("UPDATE sites_site SET time_zone = %s WHERE id = %s", [zone, site])
    for statement in SEED.split(";"):
        if statement.strip():
            conn.execute(statement, {"site": site, "n": n})
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE")
    return site


SITE_SCRIPT = """
from carebell.sites.models import DeliverySettings, Organization, Site
org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
site = Site.objects.create(organization=org, name="Bench Clinic", time_zone="UTC", kind="clinic",
                           phone="+12025550100", sms_from="+12025550199")
DeliverySettings.defaults_for(site).save()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sim(env: dict[str, str], n: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "carebell.simulator.server", "--port", str(port)]
    sim = subprocess.Popen(
        [*command, "--no-callbacks", "--max-records", str(n + 1000)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/sim/api/faults", timeout=1).read()  # noqa: S310 - loopback
            return sim, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the sim did not start")


def commits(conn: psycopg.Connection, name: str) -> int:
    query = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute(query, [name]).fetchone()[0]


def postgres_pids(conn: psycopg.Connection, name: str, *, backends: bool) -> list[int]:
    """This database's backends, or the server's own processes (postmaster, WAL
    writer, checkpointer, …): another database's backends are not ours."""
    query = """SELECT pid, backend_type = 'client backend' FROM pg_stat_activity
               WHERE datname = %s OR backend_type <> 'client backend'"""
    conn.execute("SELECT pg_stat_clear_snapshot()")  # the activity view is cached per transaction
    found = conn.execute(query, [name]).fetchall()
    if backends:
        return [pid for pid, client in found if client]
    every = set(pids_named("postgres"))
    postmaster = [pid for pid in every if parent_of(pid) not in every]
    return [*(pid for pid, client in found if not client), *postmaster]


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def commits_when_stopped(conn: psycopg.Connection, name: str, workers) -> int:
    """The database's commit counter once the workers have stopped. A backend
    reports its counts to pg_stat_database at most once a second while busy, and
    always when it exits: read before that, a short run misses its last commits."""
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        others = [p for p in postgres_pids(conn, name, backends=True) if p != conn.info.backend_pid]
        if not others:
            break
        time.sleep(0.05)
    return commits(conn, name)


def done_count(conn: psycopg.Connection, total: int) -> int:
    # Counted on the partial index of pending rows: a scan of the whole table every
    # poll cost PostgreSQL more than the dispatcher's own queries.
    pending = f"SELECT count(*) FROM messaging_outboxmessage WHERE {PENDING}"
    return total - conn.execute(pending).fetchone()[0]


def main() -> None:
    args = options()
    url = f"{args.server}/{args.database}"
    env = {
        **os.environ,
        "CAREBELL_DATABASE_URL": url,
        "CAREBELL_LOG_LEVEL": "warning",
        # DEBUG off (Django would keep every query in memory); a throwaway key.
        "CAREBELL_DEBUG": "0",
        "CAREBELL_SECRET_KEY": os.environ.get("CAREBELL_SECRET_KEY", "bench-" + "x" * 50),
        # The simulator is off with debug off unless switched on, with a secret.
        "CAREBELL_SIM_ENABLED": "1",
        "CAREBELL_SIM_AUTH_TOKEN": secrets.token_urlsafe(32),
    }
    os.environ.update(env)
    prepare_database(args.server, args.database, env)
    with psycopg.connect(url) as conn:
        seed(conn, args.messages)
    sim, sim_url = start_sim(env, args.messages)
    env.update({"CAREBELL_SMS_PROVIDER": "sim", "CAREBELL_SIM_URL": sim_url})
    worker_command = [CAREBELL, "worker", "--batch-size", str(args.batch_size)]
    worker_command += ["--concurrency", str(args.concurrency), "--idle", "0.2"]
    workers = [subprocess.Popen(worker_command, env=env, cwd=ROOT) for _ in range(args.workers)]
    meters = {name: CpuMeter() for name in ("workers", "sim", "postgres", "postgres server")}
    try:
        # Watched from inside one read-only transaction: it never commits, so every
        # commit the counter shows is the dispatcher's (READ COMMITTED: each poll
        # still sees the latest rows; statistics are re-read after clearing them).
        with psycopg.connect(url) as conn:
            watched = {
                "workers": lambda: [w.pid for w in workers],
                "sim": lambda: [sim.pid],
                # This script's own connection is not the dispatcher's work.
                "postgres": lambda: [
                    pid
                    for pid in postgres_pids(conn, args.database, backends=True)
                    if pid != conn.info.backend_pid
                ],
                "postgres server": lambda: postgres_pids(conn, args.database, backends=False),
            }
            started = time.monotonic()
            while (sent0 := done_count(conn, args.messages)) < args.messages * 0.05:
                time.sleep(0.05)
            t0, commits0 = time.monotonic(), commits(conn, args.database)
            for name, meter in meters.items():
                meter.sample(watched[name]())
            while done_count(conn, args.messages) < args.messages:
                time.sleep(0.25)
                if time.monotonic() - started > 600:
                    raise RuntimeError("not done after 10 minutes")
            for name, meter in meters.items():
                meter.sample(watched[name]())
            t1 = time.monotonic()
            rss = [peak_rss_mb(w.pid) for w in workers]
            commits1 = commits_when_stopped(conn, args.database, workers)
            statuses = dict(
                conn.execute(
                    "SELECT status, count(*) FROM messaging_outboxmessage GROUP BY status"
                ).fetchall()
            )
            attempts = conn.execute("SELECT count(*) FROM messaging_deliveryattempt").fetchone()[0]
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=30)
        sim.kill()
        sim.wait()
    measured = args.messages - sent0
    seconds = t1 - t0
    print(
        f"messages           {args.messages} ({measured} in steady state), {args.workers} workers"
    )
    print(f"statuses           {statuses}; attempt rows {attempts}")
    print(f"throughput         {measured / seconds:,.0f} messages/s (goal >= 1,500)")
    print(
        f"commits            {(commits1 - commits0) / measured:.4f} per message",
        "(goal <= 0.05)",
    )
    cpu = {name: meter.total() * 1000 / measured for name, meter in meters.items()}
    parts = ", ".join(f"{name} {ms:.3f}" for name, ms in cpu.items())
    print(f"CPU, all processes {sum(cpu.values()):.3f} ms per message (goal <= 1.5): {parts}")
    print(f"worker peak RSS    {', '.join(f'{r:.0f}' for r in rss)} MB (goal < 100)")


if __name__ == "__main__":
    main()
