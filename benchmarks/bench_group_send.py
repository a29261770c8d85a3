"""A group message to 10,000 patients: from "send" to every message queued, and the
review page, on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/bench_group_send.py [--recipients 10000] [--db both]

Each database is fresh (SQLite: var/bench-groups/bench.sqlite3; PostgreSQL: the
database `carebell_bench_groups`, dropped and created), migrated, and seeded with one
clinic and N patients, each with one contact, a mobile and a preference for general
messages (every 20th "none", so its row is stored blocked with the reason). Then,
signed in as a front-desk person through Django's test client (the whole request:
middleware, guard, audit, template):

- review: step 3's first page (which counts messages, segments and cost over the
  whole selection once and keeps the figures), the same page again, and a later page
  (by cursor): server time of each;
- send: the send button (start), then the page's progress polls (each writes for
  about a second) until done: wall time from "send" to N recipients' messages in the
  outbox, rows/s, and the counts, checked against the outbox.

Prints the figures (goal: send <= 10 s for 10,000; the review page fast and paginated).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "var" / "bench-groups"


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--db", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--database", default="carebell_bench_groups")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    return parser.parse_args()


def setup(args: argparse.Namespace) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    if args.db == "postgres":
        import psycopg

        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
            conn.execute(f'CREATE DATABASE "{args.database}"')
        os.environ["CAREBELL_DATABASE_URL"] = f"{args.server}/{args.database}"
    else:
        path = DATA / "bench.sqlite3"
        for leftover in DATA.glob("bench.sqlite3*"):
            leftover.unlink()
        os.environ["CAREBELL_DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("CAREBELL_DEBUG", "1")
    os.environ.setdefault("CAREBELL_DATA_DIR", str(DATA))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(n: int):
    from django.contrib.auth.models import Group, User

    from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient
    from carebell.sites.models import DeliverySettings, Organization, Site, StaffMembership
    from carebell.sites.roles import FRONT_DESK

    org = Organization.objects.create(name="Bench Pediatrics", slug="bench")
    site = Site.objects.create(organization=org, name="Bench Pediatrics Main", kind="clinic",
                               time_zone="America/New_York", phone="+12025550100",
                               sms_from="+12025550199")  # fmt: skip
    DeliverySettings.defaults_for(site).save()
    patients = Patient.objects.bulk_create(
        [Patient(site=site, external_id=f"B{i}", first_name=f"Pat{i}", last_name=f"Bench{i:05d}")
         for i in range(n)], batch_size=2000,
    )  # fmt: skip
    contacts = Contact.objects.bulk_create(
        [Contact(patient=p, position=1, relationship="self", first_name=p.first_name,
                 last_name=p.last_name) for p in patients], batch_size=2000,
    )  # fmt: skip
    # Fictional numbers: 555-01xx in area code 201 onwards.
    ContactPoint.objects.bulk_create(
        [ContactPoint(contact=c, kind="mobile", value=f"+1{201 + i // 100}55501{i % 100:02d}")
         for i, c in enumerate(contacts)], batch_size=2000,
    )  # fmt: skip
    ContactPreference.objects.bulk_create(
        [ContactPreference(contact=c, category="general", value="none" if i % 20 == 0 else "sms")
         for i, c in enumerate(contacts)], batch_size=2000,
    )  # fmt: skip
    user = User.objects.create_user("bench-desk")  # signed in by force_login
    user.groups.add(Group.objects.get(name=FRONT_DESK))
    StaffMembership.objects.create(user=user, site=site)
    return site, user, [p.id for p in patients]


def timed(call) -> tuple[float, object]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def run_one(args: argparse.Namespace) -> None:
    setup(args)
    from django.test import Client

    from carebell.messaging.models import GroupSend, OutboxMessage
    from carebell.sends import group
    from carebell.sends.messages import Texts

    seeded, (site, user, ids) = timed(lambda: seed(args.recipients))
    draft = group.create(site, ids, channels=["sms"], by=user)
    group.compose(draft, Texts(sms_body="Hello #PATIENTFIRSTNAME#, #SITENAME# is closed on "
                                        "Friday. Reply STOP to opt out."), by=user)  # fmt: skip
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    # A first request imports the whole URL conf (API, FHIR…): not the page's time.
    client.get(f"/staff/groups/{draft.pk}/")
    review = f"/staff/groups/{draft.pk}/review/"
    first, response = timed(lambda: client.get(review))
    assert response.status_code == 200, response.status_code
    again, _ = timed(lambda: client.get(review))
    later_id = sorted(ids)[len(ids) // 2]
    later, _ = timed(lambda: client.get(f"{review}?after={later_id}"))

    def send() -> int:
        client.post(f"/staff/groups/{draft.pk}/send/")
        polls = 0
        while True:
            polls += 1
            progress = client.post(f"/staff/groups/{draft.pk}/progress/").json()
            if progress["status"] == "done":
                return polls

    took, polls = timed(send)
    sent = GroupSend.objects.get(pk=draft.pk)
    rows = OutboxMessage.objects.filter(kind="general")
    stored = rows.count()
    blocked = rows.filter(status="blocked").count()
    print(f"[{args.db}] {args.recipients:,} patients seeded in {seeded:.1f} s")
    print(f"[{args.db}] review page: first {first * 1000:.0f} ms (counts the whole selection), "
          f"again {again * 1000:.0f} ms, a later page {later * 1000:.0f} ms")  # fmt: skip
    print(f"[{args.db}] send -> queued: {took:.2f} s for {sent.total:,} recipients "
          f"({sent.total / took:,.0f}/s, {polls} progress polls): {sent.queued:,} queued, "
          f"{sent.blocked:,} blocked; outbox holds {stored:,} ({blocked:,} blocked)")  # fmt: skip


def main() -> None:
    args = options()
    if args.db != "both":
        run_one(args)
        return
    for db in ("sqlite", "postgres"):
        command = [sys.executable, __file__, "--recipients", str(args.recipients), "--db", db,
                   "--database", args.database, "--server", args.server]  # fmt: skip
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
