"""Automated messages: the list, the switches, the editor and its forecast."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import AutomatedMessage, MessageTemplate, OutboxMessage
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from carebell.web.staff import engine
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(staff_of):
    return staff_of(SYSTEM_ADMINISTRATOR)


@pytest.fixture
def reminder(rules):
    return next(r for r in rules if r.kind == Kind.APPT_REMINDER)


@pytest.fixture
def booked(site):
    """A child with a visit the day after tomorrow and a mother who takes texts."""
    patient = factories.make_patient(site, first_name="Ana")
    contact = factories.make_contact(patient)
    factories.add_point(contact, ContactPointKind.MOBILE, "+12025550190")
    factories.set_preference(contact, "reminders", "sms")
    start = timezone.now().replace(hour=15, minute=0) + dt.timedelta(days=2)
    return factories.make_appointment(patient, starts_at=start)


def editor_data(rule, **changes) -> dict:
    data = {"name": rule.name, "offset-0-amount": "1", "offset-0-unit": "days"}
    if rule.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_list_shows_each_rule_with_a_switch(admin, rules):
    page = admin.get("/staff/automated/").content.decode()
    for rule in rules:
        assert rule.name in page
    assert page.count('name="enabled"') == len(rules)


def test_enabling_a_rule_plans_its_messages(admin, reminder, booked):
    response = admin.post(f"/staff/automated/{reminder.pk}/toggle/", {"enabled": "1"}, follow=True)
    reminder.refresh_from_db()
    assert reminder.enabled
    assert "is now enabled" in response.content.decode()
    assert OutboxMessage.objects.filter(rule=reminder, status="scheduled").count() == 1
    admin.post(f"/staff/automated/{reminder.pk}/toggle/", {"enabled": "0"})
    reminder.refresh_from_db()
    assert not reminder.enabled
    assert AuditEvent.objects.filter(actor=admin.user, object_id=str(reminder.pk)).count() == 2


def test_the_toggle_takes_only_a_post(admin, reminder):
    assert admin.get(f"/staff/automated/{reminder.pk}/toggle/").status_code == 405


def test_the_editor_shows_what_the_rule_would_send_in_the_next_seven_days(admin, reminder, booked):
    page = admin.get(f"/staff/automated/{reminder.pk}/").content.decode()
    assert "next 7 days" in page and "If it were enabled" in page
    assert "***" in page or "0190" in page  # the masked number
    assert OutboxMessage.objects.count() == 0  # the forecast wrote nothing
    reminder.refresh_from_db()
    assert not reminder.enabled


def test_the_forecast_of_unsaved_changes_is_shown_before_saving(admin, reminder, booked):
    data = editor_data(reminder, **{"offset-0-amount": "2", "preview": "1"})
    page = admin.post(f"/staff/automated/{reminder.pk}/", data).content.decode()
    assert "not yet saved" in page
    reminder.refresh_from_db()
    assert reminder.offsets == [{"days": 1}]


def test_saving_keeps_the_timing_rows_channels_filters_and_override(admin, reminder):
    data = editor_data(
        reminder,
        enabled="on",
        **{"offset-0-amount": "2", "offset-1-amount": "3", "offset-1-unit": "hours",
           "offset-2-amount": "", "channels": ["sms"], "providers": "Dr Ortiz, Dr Lee",
           "override_window_start": "09:00", "override_window_end": "17:00", "save": "1"},
    )  # fmt: skip
    response = admin.post(f"/staff/automated/{reminder.pk}/", data, follow=True)
    assert "saved" in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.enabled and reminder.offsets == [{"days": 2}, {"hours": 3}]
    assert reminder.channels == ["sms"]
    assert reminder.filters == {"providers": ["Dr Ortiz", "Dr Lee"]}
    assert reminder.settings_override == {
        "email_sms_window_start": "09:00", "email_sms_window_end": "17:00"
    }  # fmt: skip


def test_the_editor_offers_a_few_empty_rows_without_javascript(admin, reminder):
    page = admin.get(f"/staff/automated/{reminder.pk}/").content.decode()
    assert 'name="offset-2-amount"' in page and 'name="offset-3-amount"' not in page


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"offset-0-amount": "0"}, "greater than or equal to 1"),
        ({"offset-0-amount": "soon"}, "Enter a whole number"),
        ({"offset-0-amount": ""}, "at least one time"),
        ({"offset-0-unit": "weeks"}, "Select a valid choice"),
        ({"channels": ["fax"]}, "Select a valid choice"),
        ({"name": ""}, "This field is required"),
        ({"override_window_start": "10:00"}, "both times"),
        ({"override_window_start": "18:00", "override_window_end": "09:00"}, "close after"),
    ],
)
def test_bad_input_gets_a_form_error_and_changes_nothing(admin, reminder, changes, error):
    before = AutomatedMessage.objects.filter(pk=reminder.pk).values().get()
    response = admin.post(f"/staff/automated/{reminder.pk}/", editor_data(reminder, **changes))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert AutomatedMessage.objects.filter(pk=reminder.pk).values().get() == before


def test_the_format_in_use_is_picked_among_the_sites_formats(admin, reminder, site):
    def fmt(name, in_use):
        return MessageTemplate.objects.create(
            site=site, channel="sms", kind=reminder.kind, language="en", name=name,
            body="Reminder: {appointment_time} at {site_name}.", in_use=in_use,
        )  # fmt: skip

    first, second = fmt("Short", True), fmt("Friendly", False)
    page = admin.get(f"/staff/automated/{reminder.pk}/").content.decode()
    assert "Friendly" in page and "Short" in page
    data = editor_data(reminder, **{"format-sms-en": str(second.pk), "save": "1"})
    admin.post(f"/staff/automated/{reminder.pk}/", data)
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.in_use and not first.in_use
    response = admin.post(
        f"/staff/automated/{reminder.pk}/", editor_data(reminder, **{"format-sms-en": "999999"})
    )
    assert "Select a valid choice" in response.content.decode()


def test_save_rule_replans_and_counts(reminder, booked):
    reminder.enabled = True
    assert engine.save_rule(reminder, by=None) == 1


def test_the_forecast_says_in_words_why_a_message_would_not_go(reminder):
    forecast = engine.Forecast(days=7)
    forecast.lines = [
        {"status": "skipped", "reasons": ["no_contact_point"], "planned_at": None},
        {"status": "skipped", "reasons": ["not_a_code"], "planned_at": None},
    ]
    texts = [text for text, _count in forecast.not_sent]
    assert "not_a_code" in texts and all("{" not in text for text in texts)


# A new automated message


def test_an_administrator_creates_a_rule_switched_off_and_lands_in_its_editor(admin, site):
    page = admin.get("/staff/automated/new/").content.decode()
    assert 'value="recall"' in page and 'value="rx_ready"' not in page  # a clinic's kinds
    response = admin.post(
        "/staff/automated/new/", {"kind": "appt_reminder", "name": "Two hours before"}
    )
    rule = AutomatedMessage.objects.get(site=site, name="Two hours before")
    assert response.status_code == 302 and response["Location"] == f"/staff/automated/{rule.pk}/"
    assert (rule.kind, rule.enabled, rule.offsets) == ("appt_reminder", False, [{"days": 1}])
    assert AuditEvent.objects.filter(action="create", object_id=str(rule.pk)).exists()


def test_a_pharmacy_offers_its_own_kinds(staff_of, pharmacy):
    admin = staff_of(SYSTEM_ADMINISTRATOR, at=pharmacy)
    page = admin.get("/staff/automated/new/").content.decode()
    assert 'value="refill_due"' in page and 'value="appt_reminder"' not in page


def test_a_kind_the_site_does_not_plan_is_refused(admin, site):
    response = admin.post("/staff/automated/new/", {"kind": "refill_due", "name": "Refills"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not AutomatedMessage.objects.filter(name="Refills").exists()


def test_without_the_edit_permission_no_rule_is_created(staff_of, site):
    desk = staff_of("Front Desk")
    assert desk.get("/staff/automated/new/").status_code == 403
    desk.post("/staff/automated/new/", {"kind": "appt_reminder", "name": "Sneaky"})
    assert not AutomatedMessage.objects.filter(name="Sneaky").exists()
