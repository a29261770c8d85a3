"""A group message in a real browser (Debian's Chromium): a front-desk person filters
the patient list, opens the group message wizard, puts a flagged row right in place,
writes the text, reviews every message with its segments and cost, sends it, watches
the progress bar, and finds every message in the queue. Each step is saved under
var/screenshots/ (the review step also as docs/screenshots/group-send.png)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import GroupSend, OutboxMessage
from carebell.sends import group
from carebell.sends.messages import Texts
from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.browser import RECORD_VIOLATIONS, SHOTS, no_violations, shoot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = ["Ana Alvarez", "Beto Bravo", "Carla Cruz", "Diego Diaz", "Elena Estrada", "Fidel Flores"]


@pytest.fixture
def clinic(site):
    factories.make_staff(site, FRONT_DESK, username="erin")
    patients = []
    for i, name in enumerate(NAMES):
        first, last = name.split()
        patient = factories.make_patient(site, first_name=first, last_name=last, language="es")
        contact = factories.make_contact(patient, relationship="self", first_name=first)
        factories.add_point(contact, ContactPointKind.MOBILE, f"+120255509{i:02d}")
        # The last one has no preference for general messages yet: flagged in step 1.
        if i < len(NAMES) - 1:
            factories.set_preference(contact, "general", "sms")
        patients.append(patient)
    # One whose number replied STOP: her row is stored blocked, with the reason.
    gloria = factories.make_patient(site, first_name="Gloria", last_name="Gomez", language="es")
    contact = factories.make_contact(gloria, relationship="self", first_name="Gloria")
    factories.add_point(contact, ContactPointKind.MOBILE, "+12025550999", opted_out_sms=True)
    factories.set_preference(contact, "general", "sms")
    english = factories.make_patient(site, first_name="Gus", last_name="Green", language="en")
    factories.set_preference(factories.make_contact(english), "general", "sms")
    # A group message sent last week: offered again in step 2.
    desk = factories.make_staff(site, FRONT_DESK)
    earlier = group.create(site, [english.id], channels=["sms"], by=desk)
    group.compose(earlier, Texts(sms_body="Flu shots at #SITENAME# this week."), by=desk)
    group.run(group.start(earlier, by=desk))
    return patients


def test_front_desk_sends_a_group_message_to_a_filtered_list(page, live_server, clinic):
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/", "erin")
    page.wait_for_selector("text=Today at")
    page.goto(f"{live_server.url}/staff/patients/")
    page.select_option("#id_language", "es")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("text=Alvarez, Ana")
    assert not page.is_visible("text=Green, Gus")
    shoot(page, "staff-group-0-patient-list")
    page.click("text=Group message to every patient found")

    page.wait_for_selector("h1:has-text('Group message')")
    assert page.is_visible("text=7 of 7 patients selected")
    flagged = page.locator("td.flag-cell select[data-fix]")
    assert flagged.count() == 1
    shoot(page, "staff-group-1-flagged")
    flagged.select_option("sms")
    page.wait_for_selector("text=Saved.")
    assert page.locator("td.flag-cell select[data-fix]").count() == 0
    page.check("input[name=channels][value=sms]")
    shoot(page, "staff-group-1-recipients")
    page.click("text=Next: the message")

    page.wait_for_selector("#id_sms_body")
    # The page's script (deferred) listens for the choice: the element can be there
    # before it runs, and a choice made then fills nothing in.
    page.wait_for_load_state("load")
    page.select_option("#source", label=page.locator("#source option").nth(1).inner_text())
    # The page fills the text in when the choice changes: wait for it, not a moment.
    expect(page.locator("#id_sms_body")).to_have_value("Flu shots at #SITENAME# this week.")
    page.fill("#id_sms_body", "Hola #PATIENTFIRSTNAME#: #SITENAME# cierra el viernes.")
    page.wait_for_selector("#sms-count:has-text('segment')")
    shoot(page, "staff-group-2-message")
    page.click("text=Next: review")

    page.wait_for_selector("text=Every message")
    for name in NAMES:
        assert page.is_visible(f"text=Hola {name.split()[0]}:")
    figures = page.inner_text(".group-figures")
    assert "messages to send" in figures and "SMS segments" in figures
    blocked = page.inner_text("tr.blocked-row")
    assert "Blocked" in blocked and "The number opted out of text messages." in blocked
    assert "1 message: The contact opted out of this way of sending." in figures
    assert "opted_out" not in figures + blocked
    shoot(page, "staff-group-3-review")
    Path("docs/screenshots").mkdir(parents=True, exist_ok=True)
    shutil.copy(SHOTS / "staff-group-3-review.png", "docs/screenshots/group-send.png")
    page.click("text=Send to the message queue")

    page.wait_for_selector("#group-progress[data-done='1']", timeout=20_000)
    assert "6 messages queued, 1 blocked" in page.inner_text("#group-progress")
    shoot(page, "staff-group-4-sent")
    page.click("text=See them in the message queue")
    page.wait_for_selector("h1:has-text('Message queue')")
    queue = page.inner_text("table.queue-table")
    for name in [*NAMES, "Gloria Gomez"]:
        assert name in queue
    assert "Blocked" in queue
    shoot(page, "staff-group-5-queue")
    no_violations(page)

    sent = GroupSend.objects.latest("id")
    assert (sent.status, sent.queued, sent.blocked) == ("done", 6, 1)
    assert OutboxMessage.objects.filter(kind="general", status="scheduled").count() == 6
