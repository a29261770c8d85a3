"""A one-off message in a real browser (Debian's Chromium): from the patient's panel,
write a text, preview it with its segments, send it, and find it on the panel.
Screens are saved under var/screenshots/."""

from __future__ import annotations

import pytest

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import OutboxMessage
from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.browser import RECORD_VIOLATIONS, no_violations, shoot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_front_desk_sends_a_one_off_text_from_the_panel(page, live_server, site):
    factories.make_staff(site, FRONT_DESK, username="erin")
    patient = factories.make_patient(site, first_name="Nora", last_name="Quinn")
    contact = factories.make_contact(patient, relationship="self", first_name="Nora")
    factories.add_point(contact, ContactPointKind.MOBILE, "+12025550166")
    factories.set_preference(contact, "general", "sms")
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/", "erin")
    page.wait_for_selector("text=Today at")
    page.goto(f"{live_server.url}/staff/patients/{patient.pk}/")
    page.click("text=Send a message")
    page.wait_for_selector("#one-off")
    page.fill("#id_body", "Hi #PATIENTFIRSTNAME#, your forms are ready at #SITENAME#.")
    page.click("button[value=preview]")
    page.wait_for_selector("#one-off-preview")
    preview = page.inner_text("#one-off-preview")
    assert f"Hi Nora, your forms are ready at {site.name}." in preview
    assert "1 segment" in preview
    shoot(page, "staff-one-off-preview")
    page.click("button[value=send]")
    page.wait_for_selector("text=The message is in the queue.")
    shoot(page, "staff-one-off-sent")
    no_violations(page)
    message = OutboxMessage.objects.get()
    assert (message.kind, message.status, message.to_address) == (
        "general", "scheduled", "+12025550166",
    )  # fmt: skip
