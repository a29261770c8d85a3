"""HL7 v2 over MLLP on PostgreSQL: SIU S12 messages over loopback, each committed —
the patient found, the appointment saved through save_appointment, its reminders
replanned, the message and its ACK stored — before its ACK comes back.

    .venv/bin/python benchmarks/bench_mllp.py [--messages 2000] [--connections 1 8] [--port N]
        [--processes N] [--database NAME] [--profile N]

Uses the database `postgres_hl7` (created and migrated if missing) and truncates
the tables it seeds (patients and what hangs off them). Seeds one clinic with a
reminder rule and N patients who each have a mobile and a text preference, starts
`carebell hl7 listen` for each run (one process for one connection, one per core for
more, unless `--processes` says) and sends one new appointment per message
for those patients, one message at a time per connection (the sender waits for each
ACK, as MLLP senders do). Prints messages/s, ACK latency and the CPU per message of
the listener (all its processes) and of PostgreSQL; asserts nothing but that every
message got AA and planned its reminder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchdb import backend_pids
from procstat import CpuMeter, children

ROOT = Path(__file__).resolve().parent.parent
CAREBELL = str(Path(sys.executable).with_name("carebell"))
WARM = 50  # messages sent before each timed run


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000, help="Per run.")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--workers", type=int, default=8, help="Listener DB threads.")
    parser.add_argument("--processes", type=int, default=0,
                        help="Listener processes (default: 1 for 1 connection, else one "
                             "per core).")  # fmt: skip
    parser.add_argument("--database", default="postgres_hl7")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--port", type=int, default=0, help="The listener's (default: a free one).")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="Instead: receive N messages in this process (no socket) and print "
                             "CPU (time.process_time) and SQL statements per message, and the "
                             "top functions by CPU.")  # fmt: skip
    return parser.parse_args()


def setup(url: str) -> dict:
    env = {
        **os.environ,
        "CAREBELL_DATABASE_URL": url,
        "CAREBELL_LOG_LEVEL": "warning",
        "CAREBELL_DEBUG": "0",  # Django would keep every query in memory
        "CAREBELL_SECRET_KEY": os.environ.get("CAREBELL_SECRET_KEY", "bench-" + "x" * 50),
        "DJANGO_SETTINGS_MODULE": "carebell.settings",
    }
    os.environ.update(env)
    return env


def prepare(server: str, name: str, env: dict) -> None:
    from benchdb import ensure_database

    ensure_database(server, name)
    subprocess.run([CAREBELL, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)


def seed(patients: int):
    from django.db import connection, transaction

    from carebell.core.senders import normalise_phone
    from carebell.core.vocab import ContactPointKind, Kind, Relationship
    from carebell.interop.hl7.models import Hl7Sender
    from carebell.messaging.models import AutomatedMessage
    from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient
    from carebell.sites.models import DeliverySettings, Organization, Site

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE interop_hl7_hl7message, interop_hl7_hl7applied, interop_hl7_hl7sender, "
            "messaging_outboxsubject, messaging_outboxmessage, appointments_appointment, "
            "people_patient "
            "RESTART IDENTITY CASCADE"
        )
    with transaction.atomic():
        org, _ = Organization.objects.get_or_create(slug="bench-hl7", defaults={"name": "Bench"})
        site, created = Site.objects.get_or_create(
            organization=org, name="Bench HL7 clinic",
            defaults={"kind": "clinic", "time_zone": "America/New_York", "phone": "+12025550100"},
        )  # fmt: skip
        if created:
            DeliverySettings.defaults_for(site).save()
        AutomatedMessage.objects.get_or_create(
            site=site, kind=Kind.APPT_REMINDER,
            defaults={"name": "Reminder", "enabled": True, "offsets": [{"days": 1}]},
        )  # fmt: skip
        Hl7Sender.objects.create(site=site)
        have = Patient.objects.filter(site=site, source="hl7:BENCH").count()
        for n in range(have, patients):
            # Exactly what the messages will say: a steady feed, no demographic changes.
            patient = Patient.objects.create(site=site, source="hl7:BENCH", external_id=f"B{n}",
                                             first_name="Ada", last_name=f"Bench{n}",
                                             birth_date=dt.date(2015, 6, 1))  # fmt: skip
            me = Contact.objects.create(patient=patient, position=1, relationship=Relationship.SELF,
                                        first_name="Ada", last_name=f"Bench{n}")  # fmt: skip
            raw = phone(n)
            value = normalise_phone(raw, "US")
            ContactPoint.objects.create(contact=me, kind=ContactPointKind.MOBILE, raw_value=raw,
                                        value=value, consent_sms=True)  # fmt: skip
            ContactPreference.objects.create(contact=me, category="reminders", value="sms")
    return site


def phone(patient: int) -> str:
    return f"2025550{patient % 1000:03d}"


def message(n: int, run: str, patient: int, start: dt.datetime) -> bytes:
    sent = dt.datetime.now(dt.UTC)
    when = start + dt.timedelta(minutes=15 * (n % 2000))
    return (
        f"MSH|^~\\&|PMS|BENCH|CB|CB|{sent:%Y%m%d%H%M%S}+0000||SIU^S12^SIU_S12|{run}-{n}|P|2.5\r"
        f"SCH|{run}-{n}|{run}-{n}||||Checkup|Checkup\r"
        f"TQ1|||||||{when:%Y%m%d%H%M%S}+0000\r"
        f"PID|1||B{patient}^^^PMS^MR||Bench{patient}^Ada||20150601|F|||||{phone(patient)}^PRN^CP\r"
        f"RGS|1\rAIS|1||CHK^Checkup|{when:%Y%m%d%H%M%S}+0000|||30|min\r"
        "AIL|1||R1^Room 1^^Main\rAIP|1||D1^Shaw^Rose\r"
    ).encode()


def profile(count: int) -> None:
    """Receive `count` messages as the listener's worker thread does, without the
    socket: CPU and statements per message (what sharing the machine does not blur)."""
    import cProfile
    import pstats

    from django.db import connection

    from carebell.interop.hl7.receive import receive

    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    for n in range(20):  # warm: imports, caches, prepared plans
        receive(message(n, "pw", count + 20 + n, start), via="mllp", peer="bench")
    statements = [0]

    def count_statement(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    half = count // 2
    timed = [message(n, "p", n, start) for n in range(half)]
    with connection.execute_wrapper(count_statement):
        cpu = time.process_time()
        codes = [receive(raw, via="mllp", peer="bench").code for raw in timed]
        cpu = time.process_time() - cpu
    assert codes == ["AA"] * half, {c: codes.count(c) for c in set(codes)}
    print(f"in process, {half} SIU^S12: {cpu / half * 1e3:.2f} ms CPU and "
          f"{statements[0] / half:.1f} SQL statements per message")  # fmt: skip
    profiled = [message(n, "q", n, start) for n in range(half, count)]
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for raw in profiled:
        receive(raw, via="mllp", peer="bench")
    profiler.disable()
    print(f"profiled (cProfile's own cost included) over {count - half} more:")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"carebell/", 40)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send_all(port: int, messages: list[list[bytes]]) -> tuple[float, list[float], list[str]]:
    from carebell.interop.hl7.client import Client, ack_code

    latencies: list[float] = []
    codes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(messages) + 1)

    def one(batch):
        with Client("127.0.0.1", port, timeout=120) as client:
            barrier.wait()
            mine, got = [], []
            for raw in batch:
                t = time.perf_counter()
                got.append(ack_code(client.send(raw)[0]))
                mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)
            codes.extend(got)

    threads = [threading.Thread(target=one, args=(b,)) for b in messages]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, codes


def backends() -> list[int]:
    """The PostgreSQL backends of this database but this process's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        return backend_pids(cursor)


def main() -> None:
    args = options()
    env = setup(f"{args.server}/{args.database}")
    prepare(args.server, args.database, env)
    import django

    django.setup()
    from benchdb import vacuum_analyze

    from carebell.appointments.models import Appointment
    from carebell.messaging.models import OutboxMessage

    patients = args.profile + 50 if args.profile else (args.messages + WARM) * len(args.connections)
    seed(patients)
    vacuum_analyze(f"{args.server}/{args.database}")
    if args.profile:
        profile(args.profile)
        return
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    print(f"HL7 SIU^S12 over MLLP, PostgreSQL, {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f} at start)")  # fmt: skip
    for index, connections in enumerate(args.connections):
        processes = args.processes or (1 if connections == 1 else os.cpu_count())
        port = args.port or free_port()
        listener = subprocess.Popen(
            [CAREBELL, "hl7", "listen", "--port", str(port), "--workers", str(args.workers),
             "--processes", str(processes)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert "listening" in listener.stdout.readline()
            pids = [listener.pid, *children(listener.pid)]
            # Every process's connections and prepared statements, before the clock.
            warmers, first_warm = min(connections, 8), patients - WARM * (index + 1)
            send_all(port, [[message(n, f"warm{index}", first_warm + n, start)
                             for n in range(c, WARM, warmers)]
                            for c in range(warmers)])  # fmt: skip
            run, first = f"c{connections}", index * args.messages
            per = args.messages // connections
            batches = [[message(c * per + k, run, first + c * per + k, start)
                        for k in range(per)] for c in range(connections)]  # fmt: skip
            listening, database = CpuMeter(), CpuMeter()
            listening.sample(pids)
            database.sample(backends())
            seconds, latencies, codes = send_all(port, batches)
            listening.sample(pids)
            database.sample(backends())
        finally:
            listener.terminate()
            listener.wait(20)
        total = per * connections
        assert codes == ["AA"] * total, {c: codes.count(c) for c in set(codes)}
        planned = OutboxMessage.objects.filter(
            entity_id__in=Appointment.objects.filter(external_id__startswith=f"{run}-").values("id")
        ).count()
        latencies.sort()
        p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"  {connections} connection(s), {processes} process(es): {total} messages in "
            f"{seconds:.2f} s = {total / seconds:,.0f} messages/s; ACK p50 {p50 * 1e3:.1f} ms, "
            f"p99 {p99 * 1e3:.1f} ms; CPU per message: listener "
            f"{listening.total() / total * 1e3:.2f} ms, PostgreSQL "
            f"{database.total() / total * 1e3:.2f} ms; reminders planned {planned}/{total}"
        )


if __name__ == "__main__":
    main()
