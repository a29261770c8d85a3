"""The queue and the patient panel in a real browser (Debian's Chromium): a front-desk
person finds a message in the queue and deletes it, then opens the patient's panel and
reads why another message was not sent. Screens are saved under var/screenshots/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.core.reasons import CATALOGUE, Code
from carebell.core.vocab import ContactPointKind
from carebell.inbox.models import StaffNotification
from carebell.messaging.models import OutboxMessage
from carebell.people.models import ConsentRecord
from carebell.sites.roles import FRONT_DESK, SYSTEM_ADMINISTRATOR
from tests import factories
from tests.browser import RECORD_VIOLATIONS, no_violations, shoot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def row(patient, status="scheduled", hours=2, **fields):
    now = timezone.now()
    values = {
        "site": patient.site, "patient": patient, "to_address": "+12025550190",
        "channel": "sms", "kind": "appt_reminder", "planned_at": now + dt.timedelta(hours=hours),
        "due_at": now + dt.timedelta(hours=hours), "status": status, "created_at": now,
        "updated_at": now, "entity_type": "appointment",
        "entity_name": f"{patient.first_name} {patient.last_name}", **fields,
    }  # fmt: skip
    return OutboxMessage.objects.create(**values)


@pytest.fixture
def clinic(site):
    factories.make_staff(site, FRONT_DESK, username="erin")
    factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")
    ana = factories.make_patient(site, first_name="Ana", last_name="Quintero")
    mother = factories.make_contact(ana, first_name="Lucia")
    point = factories.add_point(mother, ContactPointKind.MOBILE, "+12025550190",
                                consent_sms=True)  # fmt: skip
    factories.add_point(mother, ContactPointKind.EMAIL, "lucia@example.org")
    factories.set_preference(mother, "reminders", "sms")
    father = factories.make_contact(ana, first_name="Marco", relationship="father")
    factories.add_point(father, ContactPointKind.MOBILE, "+12025550191", opted_out_sms=True)
    factories.set_preference(father, "reminders", "sms")
    ConsentRecord.objects.create(site=site, contact_point=point, address=point.value,
                                 channel="sms", action="grant", source="signature_pad",
                                 wording="I agree to receive texts about my child's visits.",
                                 recorded_at=timezone.now() - dt.timedelta(days=40))  # fmt: skip
    for i, name in enumerate(["Bea Lin", "Cal Ortiz", "Dev Patel"]):
        other = factories.make_patient(site, first_name=name.split()[0], last_name=name.split()[1])
        row(other, hours=1 + i, channel="email" if i % 2 else "sms")
    sent = row(ana, "delivered", hours=-20, attempts=1, sent_at=timezone.now())
    pending = row(ana, hours=3)
    blocked = row(ana, "blocked", hours=3, to_address="+12025550191", block_reason="opted_out",
                  reasons=[{"code": "opted_out_sms"}])  # fmt: skip
    StaffNotification.objects.create(site=site, kind="cancellation", created_at=timezone.now(),
                                     text="A patient cancelled a visit by text.")  # fmt: skip
    return {"ana": ana, "pending": pending, "blocked": blocked, "sent": sent}


def test_front_desk_deletes_a_queued_message_and_reads_why_another_was_not_sent(
    page, live_server, clinic
):
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/", "erin")
    page.wait_for_selector("text=Today at")
    page.click("nav >> text=Queue")
    page.wait_for_selector("h1:has-text('Message queue')")
    page.select_option("#id_status", "scheduled")
    page.click("form.filters button[type=submit]")
    pending = clinic["pending"]
    page.wait_for_selector(f"#pick-{pending.pk}")
    shoot(page, "staff-queue")
    page.emulate_media(media="print")
    assert not page.is_visible("form.filters") and not page.is_visible("header.top")
    shoot(page, "staff-queue-print")
    page.emulate_media(media="screen")
    page.check(f"#pick-{pending.pk}")
    page.click("text=Delete selected pending messages")
    page.wait_for_selector("text=1 message deleted from the queue.")
    shoot(page, "staff-queue-deleted")
    pending.refresh_from_db()
    assert pending.status == "cancelled"

    page.goto(f"{live_server.url}/staff/queue/{pending.pk}/")
    page.wait_for_selector("text=Deleted from the queue by erin.")
    shoot(page, "staff-queue-message")

    page.click("nav >> text=Patients")
    page.fill("#id_name", "Quintero")
    page.click("form.filters button[type=submit]")
    page.click("text=Quintero, Ana")
    page.wait_for_selector("h1:has-text('Ana Quintero')")
    panel = page.inner_text("main")
    assert CATALOGUE[Code.OPTED_OUT_SMS].sentence in panel
    assert "I agree to receive texts" in panel
    shoot(page, "staff-patient-panel")

    page.click("nav >> text=Notifications")
    page.wait_for_selector("text=A patient cancelled a visit by text.")
    page.click("button:text-is('Mark as read')")
    page.wait_for_selector(".note.unread", state="detached")
    assert page.locator("nav .count").count() == 0
    shoot(page, "staff-notifications")
    no_violations(page)


def test_an_administrator_reads_the_audit_log(page, live_server, clinic):
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/", "dana")
    page.wait_for_selector("text=Today at")
    page.goto(f"{live_server.url}/staff/patients/{clinic['ana'].pk}/")
    page.click("nav >> text=Audit log")
    page.wait_for_selector("text=people.patient")
    shoot(page, "staff-audit-log")
    page.goto(f"{live_server.url}/staff/queue/?date_from=2026-02-30")
    page.wait_for_selector(".error")
    shoot(page, "staff-queue-bad-filter")
    no_violations(page)
