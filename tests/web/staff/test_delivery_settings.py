"""The delivery settings screen (SPEC §4)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import OutboxMessage
from carebell.sites.models import DeliverySettings, Department
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from carebell.web.staff.forms import DeliverySettingsForm
from tests import factories

pytestmark = pytest.mark.django_db
URL = "/staff/settings/delivery/"


def form_data(site, **changes) -> dict:
    """What the page's form posts when nothing is changed, with `changes` on top."""
    form = DeliverySettingsForm(instance=site.delivery, site=site)
    data = {}
    for bound in form:
        value = bound.value()
        if isinstance(value, bool) or value is None:
            if value:
                data[bound.name] = "on"
        elif isinstance(value, dt.time):
            data[bound.name] = value.strftime("%H:%M")
        elif isinstance(value, list) and bound.name in ("restricted_words", "pickup_reminder_days"):
            data[bound.name] = bound.field.prepare_value(value)
        else:
            data[bound.name] = value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    return data


@pytest.fixture
def admin(staff_of):
    return staff_of(SYSTEM_ADMINISTRATOR)


def test_it_saves_the_settings_through_the_entry_point(admin, site):
    data = form_data(
        site, email_sms_window_start="09:30", delivery_days=["mon", "tue", "wed"],
        restricted_words="cannabis\n  weed \n\n", cancellation_deadline_hours="12",
        combine_siblings=False,
    )  # fmt: skip
    response = admin.post(URL, data, follow=True)
    assert "Delivery settings saved" in response.content.decode()
    row = DeliverySettings.objects.get(site=site)
    assert row.email_sms_window_start == dt.time(9, 30)
    assert row.delivery_days == ["mon", "tue", "wed"]
    assert row.restricted_words == ["cannabis", "weed"]
    assert row.cancellation_deadline_hours == 12 and not row.combine_siblings
    event = AuditEvent.objects.filter(actor=admin.user, action="change").latest("at")
    assert "delivery_days" in event.detail["fields"]


def test_it_says_how_many_pending_messages_were_planned_again(admin, site):
    now = timezone.now()
    at = dt.datetime(2026, 11, 26, 14, 0, tzinfo=dt.UTC)  # 09:00 in New York
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    point = factories.add_point(contact, ContactPointKind.MOBILE, "+12025550190")
    factories.set_preference(contact, "reminders", "sms")
    OutboxMessage.objects.create(
        site=site, patient=patient, contact=contact, contact_point=point,
        to_address="+12025550190", channel="sms", kind="appt_reminder",
        planned_at=at, due_at=at,
        created_at=now - dt.timedelta(days=1), updated_at=now - dt.timedelta(days=1),
    )  # fmt: skip
    data = form_data(site, email_sms_window_start="11:00")
    page = admin.post(URL, data, follow=True).content.decode()
    assert "pending message was planned again" in page or "were planned again" in page


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"cancellation_deadline_hours": "30"}, "less than or equal to 24"),
        ({"cancellation_deadline_hours": "0"}, "greater than or equal to 1"),
        ({"cancellation_deadline_hours": "soon"}, "Enter a whole number"),
        ({"delivery_days": False}, "This field is required"),
        ({"delivery_days": ["funday"]}, "Select a valid choice"),
        ({"email_sms_window_start": "21:00", "email_sms_window_end": "08:00"}, "must close after"),
        ({"call_window_start": "25:99"}, "Enter a valid time"),
        ({"cancellation_mode": "whenever"}, "Select a valid choice"),
    ],
)
def test_bad_input_gets_a_form_error_and_changes_nothing(admin, site, changes, error):
    before = DeliverySettings.objects.filter(site=site).values().get()
    response = admin.post(URL, form_data(site, **changes))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert DeliverySettings.objects.filter(site=site).values().get() == before


def test_the_department_is_chosen_among_the_sites_own(admin, site, other_org_site):
    theirs = Department.objects.create(site=other_org_site, name="Their desk")
    ours = Department.objects.create(site=site, name="Front Desk")
    page = admin.get(URL).content.decode()
    assert "Front Desk" in page and "Their desk" not in page
    response = admin.post(URL, form_data(site, cancellation_department=str(theirs.pk)))
    assert "Select a valid choice" in response.content.decode()
    admin.post(URL, form_data(site, cancellation_department=str(ours.pk)))
    assert DeliverySettings.objects.get(site=site).cancellation_department == ours


def test_a_clinic_sees_clinic_fields_and_a_pharmacy_pharmacy_fields(staff_of, site, pharmacy):
    clinic_page = staff_of(SYSTEM_ADMINISTRATOR).get(URL).content.decode()
    assert "Cancellation deadline" in clinic_page and "Refill reminder channels" not in clinic_page
    pharmacist = staff_of(SYSTEM_ADMINISTRATOR, at=pharmacy)
    page = pharmacist.get(URL).content.decode()
    assert "Refill reminder channels" in page and "Cancellation deadline" not in page
    assert 'type="time"' in page and 'type="checkbox"' in page


def test_a_pharmacy_saves_its_pickup_reminder_days(staff_of, pharmacy):
    client = staff_of(SYSTEM_ADMINISTRATOR, at=pharmacy)
    client.post(URL, form_data(pharmacy, pickup_reminder_days="7, 3, 3", refill_c2="on"))
    row = DeliverySettings.objects.get(site=pharmacy)
    assert row.pickup_reminder_days == [3, 7] and row.refill_c2
    response = client.post(URL, form_data(pharmacy, pickup_reminder_days="three"))
    assert "whole numbers of days" in response.content.decode()


def test_each_field_is_explained_in_a_line(admin):
    form = DeliverySettingsForm(instance=admin.user.memberships.get().site.delivery,
                                site=admin.user.memberships.get().site)  # fmt: skip
    unexplained = [name for name, field in form.fields.items() if not field.help_text]
    assert unexplained == []
