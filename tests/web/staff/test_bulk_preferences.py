"""Bulk contact preferences: the practice's "Assign Contact Preferences" and the
pharmacy's patient defaults, "Update all" and "Apply default settings"."""

from __future__ import annotations

import re

import pytest

from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind
from carebell.people.models import ContactPreference
from carebell.sites.models import DeliverySettings
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests import factories
from tests.web.staff.conftest import ROLES

pytestmark = pytest.mark.django_db


def family(site, *, mobile=None, email=None, position=1, **preferences):
    patient = factories.make_patient(site)
    if position > 1:
        factories.make_contact(patient)
    contact = factories.make_contact(patient)
    if mobile:
        factories.add_point(contact, ContactPointKind.MOBILE, mobile)
    if email:
        factories.add_point(contact, ContactPointKind.EMAIL, email)
    for category, value in preferences.items():
        factories.set_preference(contact, category, value)
    return contact


def preference(contact, category) -> str:
    row = ContactPreference.objects.filter(contact=contact, category=category).first()
    return row.value if row else ""


def counts(page: str) -> list[int]:
    return [int(n) for n in re.findall(r"data-count>(\d+)<", page)]


@pytest.fixture
def contacts(site):
    return {
        "texter": family(site, mobile="+12025550101"),
        "emailer": family(site, mobile="+12025550102", email="a@example.org"),
        "unreachable": family(site),
        "decided": family(site, mobile="+12025550103", reminders="call"),
        "second": family(site, mobile="+12025550104", position=2),
    }


@pytest.mark.parametrize("role", ROLES)
def test_only_administrators_run_the_site_wide_tool(staff_of, role):
    status = staff_of(role).get("/staff/preferences/").status_code
    assert status == (200 if role == SYSTEM_ADMINISTRATOR else 403)


def test_counting_shows_the_changes_before_anything_is_stored(admin_client_, contacts):
    page = admin_client_.post(
        "/staff/preferences/", {"reminders": "email|sms", "recalls": "", "preview": "1"}
    ).content.decode()
    assert counts(page) == [2, 0, 0, 0]
    assert "Apply 2 changes" in page
    assert not ContactPreference.objects.filter(category="reminders", value="").exists()
    assert preference(contacts["texter"], "reminders") == ""


def test_applying_stores_what_was_counted_and_running_again_changes_nothing(
    admin_client_, contacts
):
    data = {"reminders": "email|sms", "general": "sms"}
    counted = counts(
        admin_client_.post("/staff/preferences/", {**data, "preview": "1"}).content.decode()
    )
    response = admin_client_.post("/staff/preferences/", {**data, "apply": "1"}, follow=True)
    page = response.content.decode()
    assert "Reminders: 2 contacts" in page and "General notices: 3 contacts" in page
    assert counted == [2, 0, 3, 0]
    assert preference(contacts["texter"], "reminders") == "sms"
    assert preference(contacts["emailer"], "reminders") == "email"
    assert preference(contacts["unreachable"], "reminders") == ""
    assert preference(contacts["decided"], "reminders") == "call"
    assert preference(contacts["second"], "reminders") == ""
    again = admin_client_.post(
        "/staff/preferences/", {**data, "apply": "1"}, follow=True
    ).content.decode()
    assert "Nothing to change" in again
    assert counts(
        admin_client_.post("/staff/preferences/", {**data, "preview": "1"}).content.decode()
    ) == [0, 0, 0, 0]


def test_applying_writes_one_audit_entry_with_the_counts(admin_client_, contacts, site):
    admin_client_.post("/staff/preferences/", {"reminders": "sms", "apply": "1"})
    entry = AuditEvent.objects.get(object_type="people.contactpreference")
    assert entry.detail["counts"] == {"reminders": 2}
    assert entry.site_id == site.pk


def test_a_bad_option_gets_a_form_error_and_changes_nothing(admin_client_, contacts):
    response = admin_client_.post("/staff/preferences/", {"reminders": "pigeon", "apply": "1"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert preference(contacts["texter"], "reminders") == ""


def test_choosing_nothing_asks_for_an_option(admin_client_, contacts):
    page = admin_client_.post("/staff/preferences/", {"apply": "1"}).content.decode()
    assert "at least one category" in page


def test_another_organization_s_tool_never_touches_this_site(outsider, contacts):
    outsider.post("/staff/preferences/", {"reminders": "sms", "apply": "1"})
    assert preference(contacts["texter"], "reminders") == ""


# --- Pharmacy -------------------------------------------------------------------------


@pytest.fixture
def pharmacy_staff(pharmacy):
    from django.test import Client

    def make(role):
        client = Client()
        client.force_login(factories.make_staff(pharmacy, role))
        return client

    return make


@pytest.fixture
def pharmacy_admin(pharmacy_staff):
    return pharmacy_staff(SYSTEM_ADMINISTRATOR)


@pytest.fixture
def customers(pharmacy):
    return {
        "plain": family(pharmacy, mobile="+12025550201"),
        "declined": family(pharmacy, mobile="+12025550202", rx_ready="none"),
        "emailer": family(pharmacy, email="b@example.org", rx_ready="email"),
    }


def save_defaults(client, **defaults):
    data = {"action": "save", "apply_on": "added", **defaults}
    return client.post("/staff/preferences/", data)


def test_pharmacy_defaults_are_saved_with_when_they_apply(pharmacy_admin, pharmacy):
    response = save_defaults(pharmacy_admin, rx_ready="email+sms", apply_on="consent")
    assert response.status_code == 302
    row = DeliverySettings.objects.get(site=pharmacy)
    assert row.patient_defaults == {"rx_ready": "email+sms"}
    assert row.apply_defaults_on_consent


def test_a_bad_pharmacy_default_gets_a_form_error(pharmacy_admin, pharmacy):
    response = save_defaults(pharmacy_admin, rx_ready="carrier-pigeon", apply_on="never")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert DeliverySettings.objects.get(site=pharmacy).patient_defaults == {}


def test_update_all_counts_then_applies_the_same_and_keeps_no_contact(pharmacy_admin, customers):
    save_defaults(pharmacy_admin, rx_ready="email+sms", birthday="sms")
    page = pharmacy_admin.post("/staff/preferences/", {"action": "count_all"}).content.decode()
    assert counts(page) == [0, 2, 3, 0, 0, 0]
    done = pharmacy_admin.post("/staff/preferences/", {"action": "update_all"}, follow=True)
    assert "Ready for pickup: 2 contacts" in done.content.decode()
    assert preference(customers["plain"], "rx_ready") == "email+sms"
    assert preference(customers["emailer"], "rx_ready") == "email+sms"
    assert preference(customers["declined"], "rx_ready") == "none"
    again = pharmacy_admin.post("/staff/preferences/", {"action": "count_all"}).content.decode()
    assert counts(again) == [0, 0, 0, 0, 0, 0]


def test_update_all_without_defaults_says_so(pharmacy_admin, customers):
    page = pharmacy_admin.post(
        "/staff/preferences/", {"action": "update_all"}, follow=True
    ).content.decode()
    assert "Save at least one default first" in page
    assert preference(customers["plain"], "rx_ready") == ""


@pytest.mark.parametrize("role", ROLES)
def test_apply_default_settings_for_one_patient_needs_edit_patients(
    pharmacy_staff, pharmacy_admin, customers, role
):
    save_defaults(pharmacy_admin, rx_ready="sms")
    patient = customers["plain"].patient
    response = pharmacy_staff(role).post(f"/staff/patients/{patient.pk}/apply-defaults/")
    if role == READ_ONLY:
        assert response.status_code == 403
        assert preference(customers["plain"], "rx_ready") == ""
    else:
        assert response.status_code == 302
        assert preference(customers["plain"], "rx_ready") == "sms"
    assert role in (FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR)


def test_apply_default_settings_changes_only_that_patient(pharmacy_admin, customers):
    save_defaults(pharmacy_admin, rx_ready="sms")
    patient = customers["emailer"].patient
    pharmacy_admin.post(f"/staff/patients/{patient.pk}/apply-defaults/", {"next": "/staff/"})
    assert preference(customers["emailer"], "rx_ready") == "sms"
    assert preference(customers["plain"], "rx_ready") == ""


def test_apply_default_settings_for_another_organization_s_patient_is_404(outsider, customers):
    patient = customers["plain"].patient
    assert outsider.post(f"/staff/patients/{patient.pk}/apply-defaults/").status_code == 404
    assert outsider.post("/staff/patients/999999/apply-defaults/").status_code in (404,)


def test_apply_default_settings_is_a_post(pharmacy_admin, customers):
    patient = customers["plain"].patient
    assert pharmacy_admin.get(f"/staff/patients/{patient.pk}/apply-defaults/").status_code == 405


def test_apply_default_settings_ignores_a_foreign_next(pharmacy_admin, customers):
    save_defaults(pharmacy_admin, rx_ready="sms")
    patient = customers["plain"].patient
    response = pharmacy_admin.post(
        f"/staff/patients/{patient.pk}/apply-defaults/", {"next": "https://evil.example/"}
    )
    assert "evil.example" not in response["Location"]


def test_the_patient_panel_offers_apply_default_settings_on_a_pharmacy(
    pharmacy_staff, pharmacy_admin, customers
):
    save_defaults(pharmacy_admin, rx_ready="sms")
    patient = customers["plain"].patient
    page = pharmacy_admin.get(f"/staff/patients/{patient.pk}/").content.decode()
    assert f"/staff/patients/{patient.pk}/apply-defaults/" in page
    read_only = pharmacy_staff(READ_ONLY).get(f"/staff/patients/{patient.pk}/").content.decode()
    assert "apply-defaults" not in read_only
    response = pharmacy_admin.post(
        f"/staff/patients/{patient.pk}/apply-defaults/",
        {"next": f"/staff/patients/{patient.pk}/"},
        follow=True,
    )
    assert "Ready for pickup: 1 contact" in response.content.decode()
