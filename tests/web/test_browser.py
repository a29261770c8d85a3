"""The demo's pages in a real browser: staff log in and see only their own patients;
a parent confirms by link; a patient answers STOP from the simulated phone."""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from carebell.core.vocab import ContactPointKind, Kind
from carebell.dispatch.dispatcher import Dispatcher
from carebell.dispatch.rendering import signed_link
from carebell.messaging.models import OutboxMessage
from carebell.people.models import ContactPoint
from carebell.simulator.providers import sim_token
from carebell.simulator.server import SimConfig, start_in_thread
from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_front_desk_logs_in_and_sees_only_their_sites_patients(
    page, live_server, site, other_org_site
):
    factories.make_patient(site, first_name="Ines", last_name="Ours")
    factories.make_patient(other_org_site, first_name="Theo", last_name="Theirs")
    factories.make_staff(site, FRONT_DESK, username="desk")
    sign_in(page, f"{live_server.url}/admin/login/", "desk", submit="input[type=submit]")
    page.goto(f"{live_server.url}/admin/people/patient/")
    body = page.inner_text("body")
    assert "Ours" in body and "Theirs" not in body


def test_a_parent_confirms_both_children_from_the_link(page, live_server, site, settings):
    settings.BASE_URL = live_server.url
    kids = [factories.make_patient(site, first_name=n) for n in ("Ana", "Ben")]
    appointments = [factories.make_appointment(k) for k in kids]
    now = timezone.now()
    message = OutboxMessage.objects.create(
        site=site, to_address="+12025550190", channel="sms", kind=Kind.APPT_CONFIRMATION,
        entity_type="appointment", entity_id=appointments[0].id,
        entity_ids=[a.id for a in appointments], planned_at=now, due_at=now, status="sent",
        created_at=now, updated_at=now,
    )  # fmt: skip
    page.goto(signed_link("confirm", message.id))
    assert "Ana" in page.inner_text("body") and "Ben" in page.inner_text("body")
    page.click("button[value=confirm]")
    page.wait_for_selector("text=confirmed")
    assert {a.status for a in type(appointments[0]).objects.all()} == {"confirmed"}


def send_in_a_thread() -> None:
    """Run one dispatcher batch off the main thread, where Playwright's event loop runs."""

    def work() -> None:
        dispatcher = Dispatcher()
        try:
            dispatcher.process_batch()
        finally:
            dispatcher.close()
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)


def opted_out(number: str) -> bool:
    """Whether `number` is opted out of texts. The test database on SQLite is one
    shared in-memory cache, so a read while the live server's thread writes the row
    meets a table lock: that is a "not yet", not an answer."""
    try:
        return ContactPoint.objects.get(value=number).opted_out_sms
    except OperationalError:
        return False


def test_a_patient_reads_a_text_and_answers_stop_in_the_simulated_phone(
    page, live_server, site, settings
):
    sim = start_in_thread(
        SimConfig(
            port=0,
            auth_token=sim_token(),
            inbound_url=f"{live_server.url}/hooks/sim/inbound",
            # Delivery reports are not what this test reads; on SQLite they raced the
            # test's own writes for the one shared in-memory database.
            callbacks=False,
        )
    )
    settings.BASE_URL, settings.SMS_PROVIDER, settings.SIM_URL = live_server.url, "sim", sim.url
    try:
        contact = factories.make_contact(factories.make_patient(site))
        factories.add_point(contact, ContactPointKind.MOBILE, "+12025550191", consent_sms=True)
        now = timezone.now()
        OutboxMessage.objects.create(
            site=site, to_address="+12025550191", channel="sms", kind=Kind.INBOX_REPLY,
            body="Maple Pediatrics: we moved your visit to 3:30 PM.", planned_at=now,
            due_at=now, created_at=now, updated_at=now,
        )  # fmt: skip
        send_in_a_thread()
        page.goto(sim.url)
        page.get_by_role("button", name=re.compile("2025550191")).click()
        page.wait_for_selector("text=we moved your visit")
        page.fill("#body", "STOP")
        page.click("#reply button[type=submit]")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not opted_out("+12025550191"):
            time.sleep(0.2)
        assert opted_out("+12025550191")
    finally:
        sim.stop()
