"""Inbound texts and status callbacks under gunicorn on PostgreSQL, side by side
with a no-op Django endpoint served by the same workers in the same run.

    .venv/bin/python benchmarks/bench_inbound.py [--seconds 5] [--workers 3]
    .venv/bin/python benchmarks/bench_inbound.py --in-process [--requests 300] [--profile text]

Uses the database `postgres_inbox` (`--database`; created and migrated if missing) and
the data directory var/test-inbox (`--data-dir`), and seeds, once,
a clinic that sends from one Twilio number with 2,000 patients whose mothers text it,
and 40,000 texts out to them (topped up on each run), of which those the callbacks
report on are moved to sending with an attempt each. Each inbound request is a real
Twilio webhook, signed with carebell's Twilio signature code (checked first against
the twilio vectors in ../shared/vectors/twilio): the view checks the signature,
stores the text, matches its number, reads it for keywords and queues the reply
(half are HELP, answered through the outbox; half free text, which only the inbox
gets). Each callback is a signed "sent" or "delivered" report of one of those
attempts.

For each endpoint it prints the throughput with 16 connections at full speed, then
the p50/p99 latency at a fixed rate (by default half the goal: 400 texts/s, 750
callbacks/s, measured from when each request was due, so a stall counts in full).
The requests are made and signed before each run; the full-speed runs are sent by
wrk when it is installed (`apt-get install wrk`), else by aiohttp, which takes a good
part of a core from the server (loadgen.py; the first line says which), and the
fixed-rate runs by loadgen's own sender, each request on a connection opened when it
is due. The load generator shares the machine. It asserts nothing.

`--in-process` runs no server: it answers each kind of request (the no-op, an
inbound text, a status callback) a few hundred times through Django's own handler
(the whole middleware stack and the hook's door) in this process and prints the
CPU milliseconds (time.process_time, this process only) and SQL statements per
request, figures a shared machine does not blur, and the CPU of the PostgreSQL
process serving it ("PG ms", from /proc in clock ticks: coarse); `--profile
text|callback` prints that kind's statements and its cProfile as well (by CPU
time; PROFILE_SORT=tottime and PROFILE_ROWS=200 change the listing).

Gunicorn imports this file as its settings module (CAREBELL_BENCH_SETTINGS=1): the
settings are carebell's, with one extra URL, /bench/noop, answering 204.
"""

from __future__ import annotations

import os

if os.environ.get("CAREBELL_BENCH_SETTINGS") == "1":  # imported by gunicorn as settings
    from carebell.settings import *  # noqa: F403

    ROOT_URLCONF = __name__

    def __getattr__(name: str):  # the URLs, once Django is ready (PEP 562)
        if name != "urlpatterns":
            raise AttributeError(name)
        from django.http import HttpResponse
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt

        from carebell.urls import urlpatterns as carebell_urls

        noop = csrf_exempt(lambda request: HttpResponse(status=204))
        return [path("bench/noop", noop), *carebell_urls]


import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import loadgen

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "vectors" / "twilio" / "signature_vectors.json"
TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105 (a local, throwaway server)
ACCOUNT = "AC" + "b" * 32
SENDER = "+13125550100"
PATIENTS = 2_000
MESSAGES = 40_000


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=1, help="per worker (above 1: gunicorn's gthread worker)"
    )
    parser.add_argument("--inbound-rate", type=float, default=400.0)
    parser.add_argument("--callback-rate", type=float, default=750.0)
    parser.add_argument(
        "--max-rate", type=float, default=8000.0, help="requests made per second of full speed"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database", default="postgres_inbox")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "test-inbox"))
    parser.add_argument("--in-process", action="store_true", help="CPU ms and queries per request")
    parser.add_argument("--requests", type=int, default=300, help="per kind, with --in-process")
    parser.add_argument("--profile", choices=("text", "callback"), help="with --in-process")
    return parser.parse_args()


def environment(args) -> dict[str, str]:
    return {
        "CAREBELL_DATABASE_URL": f"{args.server}/{args.database}",
        "CAREBELL_DATA_DIR": args.data_dir,
        "CAREBELL_DEBUG": "0",
        "CAREBELL_SECRET_KEY": "bench-secret-key-" + "x" * 40,
        "CAREBELL_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CAREBELL_BASE_URL": f"http://127.0.0.1:{args.port}",
        "CAREBELL_SMS_PROVIDER": "twilio",
        "CAREBELL_TWILIO_AUTH_TOKEN": TOKEN,
        "CAREBELL_TWILIO_ACCOUNT_SID": ACCOUNT,
        "CAREBELL_TWILIO_FROM": SENDER,
        "CAREBELL_LOG_LEVEL": "WARNING",
        "CAREBELL_SSL_REDIRECT": "0",  # plain HTTP on loopback (TLS ends at a proxy in production)
    }


def setup(args) -> None:
    from benchdb import ensure_database

    ensure_database(args.server, args.database)
    os.environ.update(environment(args))
    os.environ["DJANGO_SETTINGS_MODULE"] = "carebell.settings"
    if args.in_process:  # the same settings and URLs (the no-op) as the server's
        os.environ.update(CAREBELL_BENCH_SETTINGS="1", DJANGO_SETTINGS_MODULE="bench_inbound")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def check_signing() -> None:
    """carebell's signing must reproduce Twilio's own worked examples first."""
    from carebell.providers.twilio.signature import sign

    vectors = json.loads(VECTORS.read_text())
    checked = 0
    for case in vectors["vectors"]:
        params, expected = case.get("params"), case.get("expected_signature")
        if not params or not expected:
            continue  # JSON bodies, repeated fields, validation-only cases
        url = case.get("signed_url", case["url"])
        assert sign(case["auth_token"], url, params) == expected, case["id"]
        checked += 1
    print(f"signing matches {checked} Twilio vector(s)")


def seed():
    """The clinic, its families and the texts being sent (once per database)."""
    from django.db import transaction
    from django.utils import timezone

    from carebell import outbox
    from carebell.core.vocab import ContactPointKind
    from carebell.messaging.models import OutboxMessage
    from carebell.planning.decisions import Decision
    from carebell.sites.models import Site
    from tests import factories

    site = Site.objects.filter(sms_from=SENDER).first()
    if site is None:
        org = factories.make_org(name="Bench Inbound", slug=f"bench-inbound-{time.time_ns()}")
        site = factories.make_site(org, name="Bench Inbound Clinic", sms_from=SENDER)
        with transaction.atomic():
            for i in range(PATIENTS):
                child = factories.make_patient(site)
                parent = factories.make_contact(child)
                factories.add_point(parent, ContactPointKind.MOBILE, number(i), consent_sms=True)
    waiting = OutboxMessage.objects.filter(site=site, kind="general", status="scheduled")
    missing = MESSAGES - waiting.count()  # each run reports on (and uses up) some
    if missing > 0:
        now = timezone.now()
        with transaction.atomic():
            writer = outbox.OutboxWriter(now)
            for i in range(missing):
                writer.add(Decision(
                    status="planned", kind="general", channel="sms", site_id=site.id,
                    patient_id=None, contact_id=None, contact_point_id=None, to=number(i),
                    entity_type="", entity_id=None, event_at=None, planned_at=now,
                    entity_name="", dedupe_key=f"bench-inbound:{i}:{now.timestamp()}", priority=5,
                ))  # fmt: skip
            writer.flush()
    return site


def attempts_to_report(site, count: int) -> list[int]:
    """`count` attempts still unreported: their messages are moved to sending and get
    an attempt each through the outbox, as the dispatcher does."""
    from types import SimpleNamespace

    from django.db import transaction
    from django.utils import timezone

    from carebell import outbox
    from carebell.messaging.models import OutboxMessage

    now = timezone.now()
    ids = list(
        OutboxMessage.objects.filter(site=site, kind="general", status="scheduled")
        .order_by("id")
        .values_list("id", flat=True)[:count]
    )
    rows = [SimpleNamespace(id=i, attempts=0, resume_attempt=None, subject="", body="Hello",
                            html_body="", segments=1) for i in ids]  # fmt: skip
    with transaction.atomic():
        outbox.start_sending(rows, now, now)
        made = outbox.insert_attempts([(r, "twilio") for r in rows], now)
    return [made[i].id for i in ids if i in made]


def number(i: int) -> str:
    """The mobile of family `i` (of PATIENTS)."""
    return f"+1202555{i % PATIENTS:04d}"


# --- the load ----------------------------------------------------------------------


class Requests:
    """Signed requests, each different (a replayed text or report would be refused)."""

    def __init__(self, base: str, attempts: list[int]):
        from carebell.providers.twilio.signature import sign

        self.sign, self.base, self.attempts = sign, base, attempts
        self.sent = 0
        self.reported = 0

    def noop(self):
        return "/bench/noop", {}, {}

    def inbound(self):
        self.sent += 1
        form = {
            "MessageSid": f"SM{time.time_ns():020d}{self.sent:012d}",
            "AccountSid": ACCOUNT,
            "From": number(self.sent % PATIENTS),
            "To": SENDER,
            "Body": "HELP" if self.sent % 2 else "Can we come at 4 instead?",
            "NumMedia": "0",
        }
        path = "/hooks/twilio/inbound"
        return path, form, {"X-Twilio-Signature": self.sign(TOKEN, self.base + path, form)}

    def callback(self):
        i = self.reported
        self.reported += 1
        if i // 2 >= len(self.attempts):
            raise SystemExit(f"all {len(self.attempts)} attempts reported on: make more")
        attempt = self.attempts[i // 2]
        form = {
            "MessageSid": f"SM{attempt:032d}",
            "AccountSid": ACCOUNT,
            "MessageStatus": "sent" if i % 2 == 0 else "delivered",
            "To": number(attempt % PATIENTS),
        }
        path = f"/hooks/twilio/status/{attempt}"
        return path, form, {"X-Twilio-Signature": self.sign(TOKEN, self.base + path, form)}

    def batch(self, make, count: int) -> list:
        """`count` requests of one kind, as the load generator sends them."""
        from loadgen import Request

        out = []
        for _ in range(count):
            path, form, headers = make()
            headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
            out.append(Request("POST", path, urlencode(form), tuple(headers.items())))
        return out


def serve(args) -> subprocess.Popen:
    env = {
        **os.environ,
        **environment(args),
        "CAREBELL_BENCH_SETTINGS": "1",
        "DJANGO_SETTINGS_MODULE": "bench_inbound",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}",
    }
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "carebell.wsgi:application",
               "--workers", str(args.workers), "--bind", f"127.0.0.1:{args.port}",
               "--log-level", "warning", "--backlog", "2048", "--preload",
               "--threads", str(args.threads)]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{args.port}/bench/noop", method="POST")
            )
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def in_process(args, site) -> None:
    """CPU and statements per request through Django's handler, no server or network.
    The callbacks report on attempts made for this run (a "sent" then a "delivered"
    each, as under load); the texts are half HELP, half free text."""
    from django.test import Client
    from inprocess import per_request

    FORM = "application/x-www-form-urlencoded"
    runs = args.requests + 20 + (101 if args.profile == "callback" else 0)
    requests = Requests(f"http://127.0.0.1:{args.port}", attempts_to_report(site, runs))
    client = Client(HTTP_HOST="127.0.0.1")

    def call(make):  # a form as Twilio posts it (urlencoded, not the client's multipart)
        path, form, headers = make()
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        return client.post(path, urlencode(form), FORM, **extra)

    print(f"in process, {args.requests} requests per kind")
    kinds = {
        "noop": ("no-op Django view", requests.noop),
        "text": ("inbound text", requests.inbound),
        "callback": ("status callback", requests.callback),
    }
    per_request(kinds, call, args.requests, args.profile, width=24)


def main() -> None:
    args = options()
    setup(args)
    check_signing()
    site = seed()
    from benchdb import vacuum_analyze
    from django.db import connection

    if args.in_process:
        vacuum_analyze(environment(args)["CAREBELL_DATABASE_URL"])
        in_process(args, site)
        return
    # Enough different requests for the flat-out run at up to --max-rate, its warm-up
    # and the timed run; a report needs its attempt, and each attempt gets two.
    flat = int(args.max_rate * args.seconds)
    warm = int(args.max_rate)
    reports = flat + warm + int(args.callback_rate * args.seconds)
    attempts = attempts_to_report(site, reports // 2 + 1)
    connection.close()
    vacuum_analyze(environment(args)["CAREBELL_DATABASE_URL"])  # after the attempts' writes
    base = f"http://127.0.0.1:{args.port}"
    requests = Requests(base, attempts)
    plans = [
        ("no-op Django view", requests.noop, args.callback_rate),
        ("inbound text", requests.inbound, args.inbound_rate),
        ("status callback", requests.callback, args.callback_rate),
    ]
    loads = [
        (label, requests.batch(make, warm), requests.batch(make, flat),
         requests.batch(make, int(rate * args.seconds)), rate)
        for label, make, rate in plans
    ]  # fmt: skip
    server = serve(args)
    try:
        print(f"gunicorn, {args.workers} {loadgen.workers(args)}; {args.connections} connections; "
              f"{args.seconds:g} s per phase; load from {loadgen.generator()}")  # fmt: skip
        print(f"{'endpoint':24} {'req/s (flat out)':>17} {'rate':>7} {'p50 ms':>8} {'p99 ms':>8}")
        for _label, warming, _flat, _timed, _rate in loads:  # each worker imports and connects
            loadgen.flat_out(base, warming, 1.0, args.connections)
        for label, _warm, flat_requests, timed_requests, rate in loads:
            full = loadgen.flat_out(base, flat_requests, args.seconds, args.connections)
            timed = loadgen.at_rate(base, timed_requests, rate)
            answers = {**full.answers, **timed.answers}
            print(f"{label:24} {full.rate:17.0f} {rate:7.0f} {timed.p50_ms:8.1f} "
                  f"{timed.p99_ms:8.1f}   "
                  f"HTTP {', '.join(f'{k}×{n}' for k, n in answers.items())}")  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
