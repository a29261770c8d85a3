"""FHIR R4 writes under gunicorn on PostgreSQL: single creates and a 1,000-entry
transaction Bundle of appointments.

    .venv/bin/python benchmarks/bench_fhir.py [--creates 1000] [--clients 4] [--entries 1000]
        [--port N] [--database NAME] [--profile N]

Uses a dedicated database (default `carebell_bench_fhir`, created and migrated if
missing) with a clinic that has an appointment reminder enabled (so each booked
appointment is planned in its request), a front-desk member and an API token. Starts
`gunicorn carebell.wsgi` with one sync worker (debug off) and, from `--clients`
keep-alive connections:

- POSTs `--creates` Patients (a name, an identifier, a mobile number: patient, self
  contact and contact point, each replanned and audited) and as many booked
  Appointments for them; prints requests/s and the CPU per request of the worker,
  which gives creates/s per core (1 / CPU per request);
- POSTs one transaction Bundle of `--entries` booked Appointments (three times) and
  prints its wall time and the worker's CPU for it.

Prints the figures; it asserts nothing. On a shared machine, trust the CPU figures
over the wall-clock ones.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdb import backend_pids, ensure_database, vacuum_analyze
from procstat import CpuMeter, children, peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--database", default="carebell_bench_fhir")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--port", type=int, default=0, help="gunicorn's (default: a free one).")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="Instead: POST N Patients and N Appointments in this process (no "
                             "server) and print CPU (time.process_time) and SQL statements per "
                             "create, and the top functions by CPU.")  # fmt: skip
    return parser.parse_args()


SETUP = """
from carebell.api import tokens
from carebell.messaging.models import AutomatedMessage
from carebell.sites.models import DeliverySettings, Organization, Site
from tests import factories
org, _ = Organization.objects.get_or_create(slug="bench-fhir", defaults={"name": "Bench FHIR"})
site = Site.objects.filter(name="Bench FHIR Clinic").first()
if site is None:
    site = Site.objects.create(organization=org, name="Bench FHIR Clinic", kind="clinic",
        time_zone="America/New_York", phone="+12025550100", sms_from="+12025550177")
    DeliverySettings.defaults_for(site).save()
    AutomatedMessage.objects.create(site=site, kind="appt_reminder", name="Reminder",
                                    enabled=True, offsets=[{"days": 1}])
import time
user = factories.make_staff(site, "Front Desk", username=f"bench-fhir-{time.time_ns()}")
print(tokens.issue(user, "bench")[1])
"""


def environment(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "CAREBELL_DATABASE_URL": f"{args.server}/{args.database}",
        "CAREBELL_DATA_DIR": str(ROOT / "var" / "bench-fhir"),
        "CAREBELL_DEBUG": "0",
        "CAREBELL_SECRET_KEY": secrets.token_urlsafe(48),
        "CAREBELL_ALLOWED_HOSTS": "127.0.0.1",
        "CAREBELL_SSL_REDIRECT": "0",
        "CAREBELL_FHIR_MAX_ENTRIES": str(max(args.entries, 1000)),
        "PYTHONPATH": str(ROOT),
    }


def prepare(args: argparse.Namespace, env: dict[str, str]) -> str:
    ensure_database(args.server, args.database)
    Path(env["CAREBELL_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    carebell = str(BIN / "carebell")
    subprocess.run([carebell, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    done = subprocess.run([carebell, "shell", "-c", SETUP], env=env, check=True, cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    vacuum_analyze(f"{args.server}/{args.database}")
    return done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int = 0) -> tuple[subprocess.Popen, int]:
    port = port or free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "carebell.wsgi", "--workers", "1", "--bind", f"127.0.0.1:{port}",
         "--keep-alive", "30", "--timeout", "600"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=open(ROOT / "var" / "bench-fhir" / "gunicorn.log", "w"),  # noqa: SIM115
    )  # fmt: skip
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/fhir/R4/metadata", timeout=1).read()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("gunicorn did not start")


class Connection:
    def __init__(self, port: int, secret: str):
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {secret}",
                        "Content-Type": "application/fhir+json"}  # fmt: skip

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        self.http.request("POST", f"/fhir/R4/{path}", json.dumps(body), self.headers)
        response = self.http.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.startswith(b"{") else {"raw": raw[:200]}


def patient(n: int, run: str) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:bench:mrn", "value": f"{run}-{n}"}],
        "name": [{"family": f"Example{n}", "given": ["Avery"]}],
        "birthDate": "2015-06-01",
        "telecom": [{"system": "phone", "value": f"+1202555{n % 10000:04d}", "use": "mobile"}],
    }


def appointment(patient_ref: str, n: int) -> dict:
    start = time.gmtime(time.time() + 3 * 86400 + (n % 480) * 60)
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "start": time.strftime("%Y-%m-%dT%H:%M:00Z", start),
        "minutesDuration": 20,
        "participant": [{"actor": {"reference": patient_ref}, "status": "accepted"}],
    }


def run_clients(port, secret, clients: int, jobs: list) -> tuple[float, list]:
    """POST every (path, body) of `jobs` from `clients` connections; wall time, answers."""
    answers, lock, queue = [], threading.Lock(), list(reversed(jobs))

    def work():
        connection = Connection(port, secret)
        while True:
            with lock:
                if not queue:
                    return
                path, body = queue.pop()
            status, answer = connection.post(path, body)
            with lock:
                answers.append((status, answer))

    threads = [threading.Thread(target=work) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, answers


def measured(server, args: argparse.Namespace, action):
    """Run `action()`; its result, and the CPU seconds of the worker and of this
    database's PostgreSQL backends (not the monitoring connection's)."""
    worker, backends = CpuMeter(), CpuMeter()
    workers = children(server.pid)
    with psycopg.connect(f"{args.server}/{args.database}", autocommit=True) as monitor:
        worker.sample(workers)
        backends.sample(backend_pids(monitor.cursor()))
        result = action()
        worker.sample(workers)
        backends.sample(backend_pids(monitor.cursor()))
    return result, worker.total(), backends.total()


def main() -> None:
    args = options()
    env = environment(args)
    secret = prepare(args, env)
    if args.profile:
        profile(env, secret, args.profile)
        return
    server, port = start_gunicorn(env, args.port)
    run = f"r{int(time.time())}"
    try:
        warm = [("Patient", patient(n, run + "w")) for n in range(20)]
        run_clients(port, secret, 1, warm)
        jobs = [("Patient", patient(n, run)) for n in range(args.creates)]
        (wall, answers), cpu, pg = measured(
            server, args, lambda: run_clients(port, secret, args.clients, jobs)
        )
        ids = [a["id"] for s, a in answers if s == 201]
        report("Patient creates", len(jobs), answers, wall, cpu, pg)
        jobs = [("Appointment", appointment(f"Patient/{ids[n % len(ids)]}", n))
                for n in range(args.creates)]  # fmt: skip
        (wall, answers), cpu, pg = measured(
            server, args, lambda: run_clients(port, secret, args.clients, jobs)
        )
        report("Appointment creates (booked, planned)", len(jobs), answers, wall, cpu, pg)
        for attempt in range(3):
            entries = [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
                        "resource": appointment(f"Patient/{ids[n % len(ids)]}", n + attempt),
                        "request": {"method": "POST", "url": "Appointment"}}
                       for n in range(args.entries)]  # fmt: skip
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            (wall, answers), cpu, pg = measured(
                server, args,
                lambda b=bundle: run_clients(port, secret, 1, [("", b)]))  # fmt: skip
            status = answers[0][0] if answers else "no answer"
            print(f"transaction of {args.entries} appointments: {status}, {wall:.2f} s wall, "
                  f"worker CPU {cpu:.2f} s, PostgreSQL CPU {pg:.2f} s")  # fmt: skip
        print(f"worker peak RSS {max(peak_rss_mb(p) for p in children(server.pid)):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


def profile(env: dict[str, str], secret: str, count: int) -> None:
    """The creates through Django's test client, in this process (inprocess.py): CPU
    and statements per create (what sharing the machine does not blur), then each
    kind's statements and a cProfile (PROFILE_SORT, PROFILE_ROWS, PROFILE_SQL …)."""
    os.environ.update(env, DJANGO_SETTINGS_MODULE="carebell.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.test import Client
    from inprocess import per_request

    client = Client(SERVER_NAME="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {secret}")
    run, numbers, ids = f"p{int(time.time())}", itertools.count(), []

    def call(make):
        path, body = make()
        answer = client.post(f"/fhir/R4/{path}", json.dumps(body),
                             content_type="application/fhir+json")  # fmt: skip
        assert answer.status_code == 201, (answer.status_code, answer.content[:300])
        if path == "Patient":  # the appointments are booked for these
            ids.append(json.loads(answer.content)["id"])
        return answer

    def new_patient():
        return "Patient", patient(next(numbers), run)

    def new_appointment():
        n = next(numbers)
        return "Appointment", appointment(f"Patient/{ids[n % len(ids)]}", n)

    print(f"in process, {count} creates per kind")
    for kind, label, make in (
        ("patient", "Patient create", new_patient),
        ("appointment", "booked Appointment create", new_appointment),
    ):
        per_request({kind: (label, make)}, call, count, kind, width=26)  # fmt: skip


def report(label, count, answers, wall, cpu, pg) -> None:
    created = sum(1 for status, _ in answers if status == 201)
    per_request = cpu / count * 1000
    print(f"{label}: {created}/{count} created, {count / wall:.0f} req/s wall "
          f"(1 worker), worker CPU {per_request:.2f} ms/request = {1000 / per_request:.0f} "
          f"creates/s per core; PostgreSQL {pg / count * 1000:.2f} ms/request")  # fmt: skip


if __name__ == "__main__":
    main()
