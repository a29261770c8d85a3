"""Message formats, the bulk preference tool and the reports in a real browser
(Debian's Chromium): the SMS counter follows the typing, the bulk tool counts and
applies, the report charts draw — with nothing refused by the Content-Security-Policy.
Each screen is saved under var/screenshots/ for a person to look at."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import MessageTemplate, OutboxMessage
from carebell.people.models import ContactPreference
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories
from tests.browser import RECORD_VIOLATIONS, no_violations, shoot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in(page, live_server, site):
    factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/", "dana")
    page.wait_for_selector("text=Today at")
    return page


@pytest.fixture
def reminder_format(site):
    template = MessageTemplate(
        site=site, channel="sms", kind="appt_reminder", language="en", name="Reminder text",
        subject="Reminder", in_use=True,
        body="#SITENAME#: #PATIENTFIRSTNAME# has a visit on #APPTDATE#. Reply STOP to end.",
    )  # fmt: skip
    template.save()
    return template


def segments(page) -> str:
    return page.inner_text("[data-sms-segments]").strip()


def test_the_segment_count_follows_the_typing(signed_in, live_server, reminder_format):
    page = signed_in
    page.goto(f"{live_server.url}/staff/formats/")
    shoot(page, "staff-formats-list")
    page.click("text=Reminder text")
    page.wait_for_selector("[data-sms-segments]")
    assert segments(page) == "1"
    assert page.inner_text("[data-sms-encoding]").strip() == "GSM-7"
    page.fill("#id_body", "")
    page.type("#id_body", "Hi #PATIENTFIRSTNAME#, see you soon. Reply STOP to end. " * 4)
    expect(page.locator("[data-sms-segments]")).to_have_text("2")
    page.type("#id_body", "It\u2019s")
    expect(page.locator("[data-sms-encoding]")).to_have_text("UCS-2")
    assert "U+2019" in page.inner_text("[data-culprits]")
    assert segments(page) == "3"
    page.click("[data-insert='#SITENAME#']")
    page.type("#id_body", " #BOGUS#")
    page.wait_for_selector("[data-preview-errors] li")
    assert "#BOGUS# at body line 1" in page.inner_text("[data-preview-errors]")
    shoot(page, "staff-format-editor")
    no_violations(page)


def test_the_html_part_of_an_email_is_previewed_as_typed(signed_in, live_server, site):
    page = signed_in
    email = MessageTemplate(
        site=site, channel="email", kind="appt_reminder", language="en", name="Reminder email",
        subject="Your visit", in_use=True, body="Hi #PATIENTFIRSTNAME#.",
        html_body="<h2 style='color:#0a5'>Hi #PATIENTFIRSTNAME#</h2><p>See you soon.</p>",
    )  # fmt: skip
    email.save()
    page.goto(f"{live_server.url}/staff/formats/{email.pk}/")
    frame = page.frame_locator("[data-preview-html]")
    expect(frame.locator("h2")).to_have_text("Hi Alexandra")
    page.fill(
        "#id_html_body", "<h2>Hello #PATIENTFIRSTNAME#</h2><script>document.title='x'</script>"
    )
    expect(frame.locator("h2")).to_have_text("Hello Alexandra")
    assert page.title() != "x"
    shoot(page, "staff-format-editor-email-html")
    no_violations(page)


def test_the_bulk_tool_counts_then_applies(signed_in, live_server, site):
    for n in range(3):
        patient = factories.make_patient(site)
        contact = factories.make_contact(patient)
        factories.add_point(contact, ContactPointKind.MOBILE, f"+1202555013{n}")
    page = signed_in
    page.goto(f"{live_server.url}/staff/preferences/")
    page.select_option("#id_reminders", "email|sms")
    page.select_option("#id_general", "sms")
    page.click("button[name=preview]")
    page.wait_for_selector("text=Apply 6 changes")
    shoot(page, "staff-contact-preferences-count")
    assert not ContactPreference.objects.exists()
    page.click("text=Apply 6 changes")
    page.wait_for_selector("text=Reminders: 3 contacts")
    assert ContactPreference.objects.filter(value="sms").count() == 6
    shoot(page, "staff-contact-preferences-applied")
    no_violations(page)


def test_the_reports_draw_their_charts(signed_in, live_server, site):
    now = timezone.now()
    for days, status in enumerate(["delivered", "delivered", "failed", "delivered", "sent"] * 2):
        when = now - dt.timedelta(days=days % 7, hours=1)
        OutboxMessage.objects.create(
            site=site, to_address="+12025550180", channel="sms", kind="appt_reminder",
            planned_at=when, due_at=when, created_at=when, updated_at=when, status=status,
            segments=1 + days % 2, error_code="30003" if status == "failed" else "",
        )  # fmt: skip
    page = signed_in
    page.goto(f"{live_server.url}/staff/reports/")
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart rect.bar").count() == 5 * 14
    shoot(page, "staff-reports")
    no_violations(page)


def test_pharmacy_patient_defaults_update_all(page, live_server, pharmacy):
    factories.make_staff(pharmacy, SYSTEM_ADMINISTRATOR, username="pat")
    for n in range(2):
        contact = factories.make_contact(factories.make_patient(pharmacy))
        factories.add_point(contact, ContactPointKind.MOBILE, f"+1202555014{n}")
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/", "pat")
    page.wait_for_selector("text=Today at")
    page.goto(f"{live_server.url}/staff/preferences/")
    page.select_option("#id_rx_ready", "email+sms")
    page.select_option("#id_refill_reminder", "sms")
    page.check("input[name=apply_on][value=consent]")
    page.click("text=Save defaults")
    page.wait_for_selector("text=Patient defaults saved.")
    page.click("text=Count the changes")
    page.wait_for_selector("text=Apply 4 changes")
    shoot(page, "staff-patient-defaults")
    page.click("text=Apply 4 changes")
    page.wait_for_selector("text=Ready for pickup: 2 contacts")
    assert ContactPreference.objects.filter(value="email+sms").count() == 2
    no_violations(page)
