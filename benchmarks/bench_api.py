"""The REST API under gunicorn on PostgreSQL: a paginated list, a single read and
creating an appointment (with its replanning), each at full speed with a real token.

    .venv/bin/python benchmarks/bench_api.py [--seconds 5] [--workers 3] [--connections 16]
        [--port 8771] [--database postgres_api] [--data-dir var/test-api]
    .venv/bin/python benchmarks/bench_api.py --in-process [--requests 300] [--profile list]

Uses the database `--database` (postgres_api unless told; created and migrated if
missing) and seeds, once, a clinic with 2,000 patients (one contact each, an email
address and a reminder preference) and its appointment confirmation and reminder
switched on, so each new appointment plans real messages in its request. Each request
goes through the whole door: the token (a SHA-256 lookup), the per-token rate limit
(one upsert; set high here so it counts without refusing), the access rule, the entry
point, and the audit entry every call writes. The list is GET
/api/v1/patients?limit=50, the read GET /api/v1/patients/{id} of a random patient, the
create POST /api/v1/appointments with an Idempotency-Key.

`--in-process` runs no server: it answers each kind of request a few hundred times
through Django's own handler (the whole middleware stack and the API's door) in this
process and prints the CPU milliseconds (time.process_time, this process only: not
PostgreSQL's) and SQL queries per request, figures a shared machine does not blur;
`--profile list|read|create` prints that kind's queries and its cProfile as well (by
CPU time; PROFILE_SORT=tottime and PROFILE_ROWS=200 change the listing).

Goals (issue 13): list and read ≥ 500 requests/s, create ≥ 200/s. The requests are
made before each run and sent by wrk when it is installed (`apt-get install wrk`),
else by aiohttp, which takes a good part of a core from the server (loadgen.py; the
first line says which). The load generator shares the machine's 2 cores with the
server and PostgreSQL, and the machine is shared: trust ratios more than digits. It
asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import loadgen

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = 2_000


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=1, help="per worker (above 1: gunicorn's gthread worker)"
    )
    parser.add_argument(
        "--max-rate", type=float, default=8000.0, help="requests made per second of full speed"
    )
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--database", default="postgres_api")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--data-dir", default=str(ROOT / "var" / "test-api"), help="CAREBELL_DATA_DIR"
    )
    parser.add_argument("--in-process", action="store_true", help="CPU ms and queries per request")
    parser.add_argument("--requests", type=int, default=300, help="per kind, with --in-process")
    parser.add_argument("--profile", choices=("list", "read", "create"), help="with --in-process")
    return parser.parse_args()


def environment(args) -> dict[str, str]:
    return {
        "CAREBELL_DATABASE_URL": f"{args.server}/{args.database}",
        "CAREBELL_DATA_DIR": args.data_dir,
        "CAREBELL_DEBUG": "0",
        "CAREBELL_SECRET_KEY": "bench-secret-key-" + "y" * 40,
        "CAREBELL_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CAREBELL_BASE_URL": f"http://127.0.0.1:{args.port}",
        "CAREBELL_LOG_LEVEL": "WARNING",
        "CAREBELL_SSL_REDIRECT": "0",  # plain HTTP on loopback (TLS ends at a proxy in production)
        "CAREBELL_API_REQUESTS_PER_MINUTE": "100000000",
    }


def setup(args) -> None:
    from benchdb import ensure_database

    ensure_database(args.server, args.database)
    os.environ.update(environment(args))
    os.environ["DJANGO_SETTINGS_MODULE"] = "carebell.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed() -> tuple[int, list[int], str]:
    """The clinic and its patients (once per database); a new token every run."""
    from django.contrib.auth.models import User
    from django.db import transaction

    from carebell.api import tokens
    from carebell.messaging.models import AutomatedMessage
    from carebell.people.models import Patient
    from carebell.planning.rules_defaults import default_rules
    from carebell.sites.models import Site
    from carebell.sites.roles import SYSTEM_ADMINISTRATOR
    from tests import factories

    site = Site.objects.filter(name="Bench API Clinic").first()
    if site is None:
        org = factories.make_org(name="Bench API", slug=f"bench-api-{time.time_ns()}")
        site = factories.make_site(org, name="Bench API Clinic")
        rules = default_rules(site)
        for rule in rules:
            rule.enabled = rule.kind in ("appt_confirmation", "appt_reminder")
        AutomatedMessage.objects.bulk_create(rules)
        with transaction.atomic():
            for i in range(PATIENTS):
                contact = factories.make_contact(factories.make_patient(site))
                factories.add_point(contact, "email", f"family{i}@example.org")
                factories.set_preference(contact, "reminders", "email")
    user = User.objects.filter(username="bench-api").first()
    if user is None:
        user = factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="bench-api")
    _token, secret = tokens.issue(user, f"bench {time.strftime('%H:%M:%S')}")
    patients = list(Patient.objects.filter(site=site).values_list("id", flat=True))
    return site.pk, patients, secret


class Requests:
    def __init__(self, site_id: int, patients: list[int]):
        self.site_id, self.patients = site_id, patients
        self.run = time.time_ns()
        self.made = 0
        self.start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)

    def listing(self):
        return "GET", f"/api/v1/patients?limit=50&site_id={self.site_id}", None, {}

    def read(self):
        return "GET", f"/api/v1/patients/{random.choice(self.patients)}", None, {}

    def create(self):
        self.made += 1
        starts = self.start + dt.timedelta(days=2 + self.made % 20, minutes=15 * (self.made % 32))
        body = {
            "patient_id": random.choice(self.patients),
            "external_id": f"B{self.run}-{self.made}",
            "starts_at": starts.isoformat(),
            "provider_name": "Dr. Rivera",
        }
        key = {"Idempotency-Key": f"bench-{self.run}-{self.made}"}
        return "POST", "/api/v1/appointments", json.dumps(body), key

    def batch(self, make, count: int, secret: str) -> list:
        """`count` requests of one kind, as the load generator sends them."""
        auth = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        out = []
        for _ in range(count):
            method, path, body, headers = make()
            out.append(loadgen.Request(method, path, body, tuple({**auth, **headers}.items())))
        return out


def serve(args) -> subprocess.Popen:
    env = {**os.environ, **environment(args), "DJANGO_SETTINGS_MODULE": "carebell.settings"}
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "carebell.wsgi:application",
        "--workers",
        str(args.workers),
        "--bind",
        f"127.0.0.1:{args.port}",
        "--log-level",
        "warning",
        "--backlog",
        "2048",
        "--preload",
        "--threads",
        str(args.threads),
    ]
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/v1/nothing")
        except urllib.error.HTTPError:
            return server  # answering (a 401 problem): up
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def in_process(args, requests: Requests, secret: str) -> None:
    """CPU and queries per request through Django's handler, no server or network."""
    from django.test import Client
    from inprocess import per_request

    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {secret}")

    def call(make):
        method, path, body, headers = make()
        send = getattr(client, method.lower())
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        if body is None:
            return send(path, **extra)
        return send(path, body, content_type="application/json", **extra)

    print(f"in process, {args.requests} requests per kind; {len(requests.patients)} patients")
    kinds = {
        "list": ("GET /patients (page of 50)", requests.listing),
        "read": ("GET /patients/{id}", requests.read),
        "create": ("POST /appointments (replans)", requests.create),
    }
    per_request(kinds, call, args.requests, args.profile)


def main() -> None:
    args = options()
    setup(args)
    site_id, patients, secret = seed()
    from benchdb import vacuum_analyze
    from django.db import connection

    # Without statistics of fresh rows the planner sorts every patient of the site
    # for a page of 50; earlier runs leave dead rows.
    vacuum_analyze(os.environ["CAREBELL_DATABASE_URL"])
    if args.in_process:
        in_process(args, Requests(site_id, patients), secret)
        return
    connection.close()
    base = f"http://127.0.0.1:{args.port}"
    requests = Requests(site_id, patients)
    plans = [
        ("GET /patients (page of 50)", requests.listing, 500),
        ("GET /patients/{id}", requests.read, 500),
        ("POST /appointments (replans)", requests.create, 200),
    ]
    flat, warm = int(args.max_rate * args.seconds), int(args.max_rate)
    loads = [
        (label, requests.batch(make, warm, secret), requests.batch(make, flat, secret), goal)
        for label, make, goal in plans
    ]
    server = serve(args)
    try:
        print(
            f"gunicorn, {args.workers} {loadgen.workers(args)}; {args.connections} connections; "
            f"{args.seconds:g} s per phase; {len(patients)} patients; "
            f"load from {loadgen.generator()}"
        )
        print(f"{'request':34} {'req/s':>7} {'goal':>6} {'p50 ms':>8} {'p99 ms':>8}")
        for _label, warming, _timed, _goal in loads:  # each worker imports and connects
            loadgen.flat_out(base, warming, 1.0, args.connections)
        for label, _warm, timed, goal in loads:
            run = loadgen.flat_out(base, timed, args.seconds, args.connections)
            print(
                f"{label:34} {run.rate:7.0f} {goal:6d} {run.p50_ms:8.1f} {run.p99_ms:8.1f}   "
                f"HTTP {', '.join(f'{c}×{n}' for c, n in sorted(run.answers.items()))}"
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
