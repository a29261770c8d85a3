"""The staff app in a real browser (Debian's Chromium): signing in with an
authenticator code, changing delivery settings, enabling an automated message and
reading its forecast — with nothing refused by the Content-Security-Policy. Each
screen is saved under var/screenshots/ for a person to look at."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import AutomatedMessage
from carebell.planning.rules_defaults import default_rules
from carebell.sites.models import DeliverySettings, Department, StaffMembership
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories
from tests.browser import RECORD_VIOLATIONS, no_violations, shoot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin(site):
    Department.objects.create(site=site, name="Front Desk")
    return factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")


@pytest.fixture
def signed_in(page, live_server, admin):
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, f"{live_server.url}/", "dana")
    page.wait_for_selector("text=Today at")
    return page


def test_an_administrator_signs_in_with_an_authenticator_code(page, live_server, admin):
    device = TOTPDevice.objects.create(user=admin, name="authenticator", confirmed=True)
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1200, "height": 800})
    page.goto(f"{live_server.url}/")
    shoot(page, "staff-sign-in")
    sign_in(page, f"{live_server.url}/", "dana")
    page.wait_for_selector("#id_code")
    shoot(page, "staff-sign-in-code")
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    page.fill("#id_code", f"{totp.token():06d}")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Today at Maple Pediatrics Downtown")
    assert "America/New_York" in page.inner_text("header")
    shoot(page, "staff-home")
    no_violations(page)


def test_an_administrator_sets_up_the_second_factor_the_site_requires(page, live_server, admin):
    DeliverySettings.objects.filter(site=admin.memberships.get().site).update(
        require_two_factor_for_admins=True
    )
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, f"{live_server.url}/", "dana")
    page.wait_for_selector(".qr svg")
    shoot(page, "staff-two-factor")
    device = TOTPDevice.objects.get(user=admin)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    page.fill("#id_code", f"{totp.token():06d}")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Two-factor sign-in is set up")
    no_violations(page)


def test_an_administrator_changes_the_delivery_settings(signed_in, live_server, site):
    page = signed_in
    page.click("nav >> text=Delivery settings")
    page.wait_for_selector("h1:has-text('Delivery settings')")
    shoot(page, "staff-delivery-settings")
    page.fill("#id_email_sms_window_start", "09:30")
    page.uncheck("input[name=delivery_days][value=sun]")
    page.fill("#id_cancellation_deadline_hours", "30")
    page.click("text=Save settings")
    page.wait_for_selector(".errors")
    shoot(page, "staff-delivery-settings-error")
    page.fill("#id_cancellation_deadline_hours", "12")
    page.click("text=Save settings")
    page.wait_for_selector("text=Delivery settings saved")
    shoot(page, "staff-delivery-settings-saved")
    row = DeliverySettings.objects.get(site=site)
    assert row.email_sms_window_start == dt.time(9, 30)
    assert "sun" not in row.delivery_days and row.cancellation_deadline_hours == 12
    no_violations(page)


def test_an_administrator_enables_a_reminder_and_sees_its_forecast(signed_in, site):
    AutomatedMessage.objects.bulk_create(default_rules(site))
    patient = factories.make_patient(site, first_name="Ana")
    contact = factories.make_contact(patient)
    factories.add_point(contact, ContactPointKind.MOBILE, "+12025550190")
    factories.set_preference(contact, "reminders", "sms")
    start = timezone.now().replace(hour=15, minute=0) + dt.timedelta(days=2)
    factories.make_appointment(patient, starts_at=start)
    page = signed_in
    page.click("nav >> text=Automated messages")
    page.wait_for_selector("table.rules")
    shoot(page, "staff-automated-messages")
    page.click("button[aria-label='Enable Appointment reminder']")
    page.wait_for_selector("text=Appointment reminder is now enabled")
    assert AutomatedMessage.objects.get(site=site, kind=Kind.APPT_REMINDER).enabled
    page.click("table.rules >> text=Appointment reminder")
    page.wait_for_selector(".forecast table")
    assert "+1202****0190" in page.inner_text(".forecast")
    page.click("text=Add a time")
    page.fill("#id_offset-1-amount", "2")
    page.select_option("#id_offset-1-unit", "hours")
    page.click("text=Show the forecast")
    page.wait_for_selector("text=not yet saved")
    shoot(page, "staff-automated-message-forecast")
    page.click("button[name=save]")
    page.wait_for_selector("text=Appointment reminder saved")
    rule = AutomatedMessage.objects.get(site=site, kind=Kind.APPT_REMINDER)
    assert rule.offsets == [{"days": 1}, {"hours": 2}]
    no_violations(page)


def test_the_pages_fit_a_tablet_and_the_site_switcher_works(signed_in, admin, pharmacy):
    StaffMembership.objects.create(user=admin, site=pharmacy)
    page = signed_in
    page.set_viewport_size({"width": 768, "height": 1024})
    page.reload()
    page.select_option("#site-choice", str(pharmacy.pk))  # submits itself
    page.wait_for_selector("text=Today at Maple Pharmacy")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    shoot(page, "staff-home-tablet")
    page.click("nav >> text=Delivery settings")
    page.wait_for_selector("h1:has-text('Delivery settings')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    assert "Refill reminder channels" in page.inner_text("main")
    shoot(page, "staff-delivery-settings-pharmacy-tablet")


def test_a_reader_sees_the_settings_and_the_messages_without_controls(page, live_server, site):
    from carebell.sites.roles import READ_ONLY

    factories.make_staff(site, READ_ONLY, username="rory")
    AutomatedMessage.objects.bulk_create(default_rules(site))
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, f"{live_server.url}/", "rory")
    page.wait_for_selector("text=Today at")
    page.click("nav >> text=Delivery settings")
    page.wait_for_selector("text=You can read these settings")
    assert page.is_disabled("#id_email_sms_window_start")
    assert page.locator("text=Save settings").count() == 0
    shoot(page, "staff-delivery-settings-read-only")
    page.click("nav >> text=Automated messages")
    page.wait_for_selector("table.rules")
    assert page.locator("table.rules button").count() == 0
    no_violations(page)
