"""Consent and verification in a real browser (Debian's Chromium), with the simulated
phone: at a pharmacy, which requires opt-in, staff record the patient's consent at the
counter and the ready notice that waited for it reaches the phone; staff send a code
and enter what the phone received. Screens are saved under var/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.db import connection
from django.utils import timezone

from carebell.core.vocab import ContactPointKind, FillStep, Kind, Relationship
from carebell.dispatch.dispatcher import Dispatcher
from carebell.messaging.models import AutomatedMessage, OutboxMessage
from carebell.people.models import ConsentRecord, ContactPoint
from carebell.planning.runner import plan_once
from carebell.simulator.providers import sim_token
from carebell.simulator.server import SimConfig, start_in_thread
from carebell.sites.roles import PHARMACY_STAFF
from tests import factories
from tests.browser import RECORD_VIOLATIONS, shoot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = "+12025550163"


def off_the_browser_thread(work) -> None:
    """Run planner or dispatcher work off the main thread, where Playwright's event
    loop runs (the dispatcher's HTTP client runs its own loop)."""

    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)


def dispatch_once() -> None:
    dispatcher = Dispatcher()
    try:
        dispatcher.process_batch()
    finally:
        dispatcher.close()


@pytest.fixture
def phone(live_server, settings):
    sim = start_in_thread(
        SimConfig(port=0, auth_token=sim_token(),
                  inbound_url=f"{live_server.url}/hooks/sim/inbound", callbacks=False)
    )  # fmt: skip
    settings.BASE_URL, settings.SMS_PROVIDER, settings.SIM_URL = live_server.url, "sim", sim.url
    yield sim
    sim.stop()


@pytest.fixture
def ada(pharmacy):
    """A new pharmacy patient with a mobile and no consent yet, whose label was printed."""
    AutomatedMessage.objects.create(site=pharmacy, kind=Kind.RX_READY, name="Ready",
                                    enabled=True)  # fmt: skip
    patient = factories.make_patient(pharmacy, first_name="Ada", last_name="Quinn")
    contact = factories.make_contact(patient, relationship=Relationship.SELF, first_name="Ada")
    factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    factories.set_preference(contact, "rx_ready", "sms")
    at = timezone.now() - dt.timedelta(minutes=30)
    rx = factories.make_prescription(patient, drug_name="Amoxicillin 250 mg")
    factories.make_fill(rx, filled_on=at.date(), step=FillStep.LABEL_PRINTED, label_printed_at=at)
    return patient


@pytest.fixture
def counter(page, live_server, pharmacy):
    factories.make_staff(pharmacy, PHARMACY_STAFF, username="rita")
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/", "rita")
    page.wait_for_selector("text=Today at")
    return page


def open_phone(page, sim) -> str:
    page.goto(sim.url)
    page.get_by_role("button", name=re.compile("2025550163")).click()
    page.wait_for_selector("text=Maple Pharmacy")
    return page.inner_text("body")


def test_a_consent_at_the_counter_starts_the_pharmacys_texts(counter, live_server, phone, ada):
    page = counter
    off_the_browser_thread(plan_once)
    assert not OutboxMessage.objects.filter(kind=Kind.RX_READY).exists()
    page.goto(f"{live_server.url}/staff/patients/{ada.pk}/")
    page.wait_for_selector("#consent >> text=No consent was recorded.")
    assert "SMS: no" in page.inner_text("#contacts")
    page.click("td >> text=Record")
    page.wait_for_selector("h1:has-text('Record consent')")
    page.click("text=Save the record")
    page.wait_for_selector(".errors, .error")
    page.check("input[name=action][value=grant]")
    page.select_option("#id_source", "verbal")
    page.fill("#id_evidence", "Read out at the counter")
    page.check("#id_shown")
    shoot(page, "staff-consent-form")
    page.click("text=Save the record")
    page.wait_for_selector("text=Consent recorded.")
    shoot(page, "staff-consent-recorded")
    record = ConsentRecord.objects.get()
    assert (record.action, record.source, record.captured_by.username) == (
        "grant",
        "verbal",
        "rita",
    )
    assert ContactPoint.objects.get().consent_sms
    off_the_browser_thread(plan_once)
    notice = OutboxMessage.objects.get(kind=Kind.RX_READY)
    assert notice.status == "scheduled" and notice.to_address == NUMBER
    off_the_browser_thread(dispatch_once)
    notice.refresh_from_db()
    assert notice.status in ("sent", "delivered")
    assert "ready" in open_phone(page, phone).lower()
    shoot(page, "staff-consent-phone")
    page.goto(f"{live_server.url}/staff/consent/")
    page.wait_for_selector("table.ledger-table >> text=Granted")
    shoot(page, "staff-consent-ledger")
    assert page.evaluate("window.__violations") == []


def test_staff_verify_a_number_with_the_code_the_phone_received(counter, live_server, phone, ada):
    page = counter
    page.goto(f"{live_server.url}/staff/patients/{ada.pk}/")
    page.click("a.verify-link")
    page.wait_for_selector("h1:has-text('Verify a phone number or email')")
    page.click("text=Send a code")
    page.wait_for_selector("text=A code was sent by text")
    off_the_browser_thread(dispatch_once)
    assert OutboxMessage.objects.get(kind=Kind.VERIFICATION).status in ("sent", "delivered")
    staff_page = page.url
    screen = open_phone(page, phone)
    code = re.search(r"code is (\d{6})", screen).group(1)
    shoot(page, "staff-verify-phone")
    page.goto(staff_page)
    page.fill("#id_code", "12")
    page.click("text=Check the code")
    page.wait_for_selector("text=A code is 6 digits.")
    page.fill("#id_code", code)
    shoot(page, "staff-verify")
    page.click("text=Check the code")
    page.wait_for_selector("text=Verified: the code was right.")
    shoot(page, "staff-verified")
    point = ContactPoint.objects.get()
    assert point.verified_at is not None and point.verified_method == "staff"
    assert page.evaluate("window.__violations") == []
