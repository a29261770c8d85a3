"""Server time of the inbox on PostgreSQL: the list, a 500-message conversation and
an idle poll.

    .venv/bin/python benchmarks/bench_inbox.py [--conversations 2000] [--repeat 30]
        [--database postgres_inbox] [--only poll]

Uses the database `--database` (created and migrated if missing) and seeds, once,
a clinic with `--conversations` conversations (each a family's number with a few
texts) and one number with 500 messages: 250 texts from the contact through the
inbound entry point and 250 replies through the reply entry point. Signed in as a
front-desk person through Django's test client (the whole request: middleware, guard,
audit entry, template), it times the inbox's first page, the unread filter, the
conversation page, its idle poll (answered 204) and the list's idle poll, and prints
p50/p95 server time, the web process's own CPU time (p50: what the request costs
Python, whatever else the machine is doing), SQL time and the queries each ran. It
asserts nothing.

The polls are timed for a front-desk person with one site and no second factor; an
idle one should take three statements (the session, the staff guard's one statement
for a poll, the "anything new?" check) and ≤ 2 ms of CPU (issue 11).
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
SENDER = "+13125550101"
BUSY = "+13125559999"


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database", default="postgres_inbox")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--only", default="", help="time only the requests whose label has this")
    return parser.parse_args()


def setup(args: argparse.Namespace) -> None:
    from benchdb import ensure_database

    ensure_database(args.server, args.database)
    os.environ["CAREBELL_DATABASE_URL"] = f"{args.server}/{args.database}"
    os.environ.setdefault("CAREBELL_DEBUG", "1")
    os.environ.setdefault("CAREBELL_DATA_DIR", str(ROOT / "var" / "test-inbox"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
    os.environ["CAREBELL_SMS_PROVIDER"] = "sim"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def text(site, sender: str, body: str, n: int, now) -> None:
    from carebell.twoway.inbound import InboundSms, handle_inbound_sms

    sms = InboundSms("sim", f"SMbench{sender}{n}{time.time_ns()}", sender, SENDER, body, {})
    handle_inbound_sms(sms, now)


def seed(args):
    import datetime as dt

    from django.utils import timezone

    from carebell.core.vocab import ContactPointKind
    from carebell.inbox import replies
    from carebell.inbox.models import Conversation
    from carebell.sites.models import Site
    from carebell.sites.roles import FRONT_DESK
    from tests import factories

    site = Site.objects.filter(sms_from=SENDER).first()
    if site is not None:
        return site
    started = time.monotonic()
    org = factories.make_org(name="Bench Inbox", slug=f"bench-inbox-{time.time_ns()}")
    site = factories.make_site(org, name="Bench Inbox Clinic", sms_from=SENDER)
    now = timezone.now() - dt.timedelta(days=2)
    for i in range(args.conversations):
        number = f"+1312{i:07d}"
        if i % 10:  # one number in ten is nobody's
            child = factories.make_patient(site)
            factories.add_point(factories.make_contact(child), ContactPointKind.MOBILE, number)
        for n in range(3):
            text(site, number, "Can we move Tuesday to 4 pm?", n, now + dt.timedelta(seconds=i))
    child = factories.make_patient(site, first_name="Busy")
    factories.add_point(factories.make_contact(child), ContactPointKind.MOBILE, BUSY)
    writer = factories.make_staff(site, FRONT_DESK, username=f"seed{time.time_ns()}")
    for n in range(250):
        at = now + dt.timedelta(minutes=n)
        text(site, BUSY, f"Question number {n}", n, at)
        busy = Conversation.objects.get(site=site, address=BUSY)
        replies.send_reply(busy, body=f"Answer {n}, #PATIENTFIRSTNAME#", by=writer,
                           now=at + dt.timedelta(seconds=30))  # fmt: skip
    print(f"seeded {args.conversations + 1} conversations in {time.monotonic() - started:.0f} s")
    return site


def measure(client, url: str, repeat: int, expect: int = 200, **params):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, cpu, sql, queries = [], [], [], 0
    for run in range(repeat + 2):
        # The log keeps the last 9,000 queries: full (after seeding), it would make
        # every capture count none.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            started, used = time.perf_counter(), time.process_time()
            response = client.get(url, params)
            elapsed, used = time.perf_counter() - started, time.process_time() - used
        assert response.status_code == expect, (url, response.status_code)
        if run >= 2:  # two warm-ups
            times.append(elapsed * 1000)
            cpu.append(used * 1000)
            sql.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
            queries = len(captured)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times), p95, statistics.median(cpu), statistics.median(sql), queries


def main() -> None:
    args = options()
    setup(args)
    site = seed(args)
    from benchdb import vacuum_analyze

    vacuum_analyze(os.environ["CAREBELL_DATABASE_URL"])  # the seed's and earlier runs' rows
    from django.test import Client

    from carebell.inbox import conversations, thread
    from carebell.inbox.models import Conversation
    from carebell.sites.models import StaffMembership
    from carebell.sites.roles import FRONT_DESK
    from tests import factories

    user = factories.make_staff(site, FRONT_DESK, username=f"bench{time.time_ns()}")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    busy = Conversation.objects.get(site=site, address=BUSY)
    loaded = thread.load(busy)
    entries = len(loaded.entries)
    thread_token = conversations.thread_token(busy, loaded.watched)
    watch = ",".join(map(str, loaded.watched))
    list_token = conversations.list_token(site)
    total = Conversation.objects.filter(site=site).count()
    print(f"site {site.name}: {total} conversations; the busy one holds {entries} messages; "
          f"{args.repeat} requests each")  # fmt: skip
    pages = [
        ("inbox, first page", "/staff/inbox/", 200, {}),
        ("inbox, unread", "/staff/inbox/", 200, {"show": "unread"}),
        ("inbox, unknown numbers", "/staff/inbox/", 200, {"show": "unmatched"}),
        (f"conversation, {entries} messages", f"/staff/inbox/{busy.pk}/", 200, {}),
        ("conversation poll, idle", f"/staff/inbox/{busy.pk}/poll/", 204,
         {"token": thread_token, "watch": watch}),
        ("inbox poll, idle", "/staff/inbox/poll/", 204, {"token": list_token}),
    ]  # fmt: skip
    heads = ("p50 ms", "p95 ms", "CPU p50", "SQL p50", "queries")
    print(f"{'request':32} " + " ".join(f"{h:>8}" for h in heads))
    for label, url, expect, params in pages:
        if args.only not in label:
            continue
        p50, p95, cpu, sql, queries = measure(client, url, args.repeat, expect, **params)
        print(f"{label:32} {p50:8.1f} {p95:8.1f} {cpu:8.1f} {sql:8.1f} {queries:8d}")
    StaffMembership.objects.filter(user=user).delete()


if __name__ == "__main__":
    main()
