"""Patients, contacts, contact points and preferences through the API."""

from __future__ import annotations

import pytest

from carebell.audit.models import AuditEvent
from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient
from carebell.sites.roles import READ_ONLY
from tests import factories
from tests.api.conftest import assert_problem

PATIENT = {"external_id": "EXT-1", "first_name": "Ana", "last_name": "Lopez", "language": "es"}


@pytest.fixture
def patient(site):
    return factories.make_patient(site)


def test_it_adds_a_patient_through_the_entry_point(api, site):
    response = api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk})
    assert response.status_code == 201, response.content
    body = response.json()
    patient = Patient.objects.get(pk=body["id"])
    assert (patient.site, patient.source, patient.language) == (site, "api", "es")
    assert response["Location"] == f"/api/v1/patients/{patient.pk}" and response["ETag"]
    assert AuditEvent.objects.filter(
        action="create", object_type="people.patient", actor=api.user
    ).exists()


def test_it_refuses_a_patient_of_a_site_it_cannot_see(api, other_org_site):
    assert_problem(api.post("/api/v1/patients", {**PATIENT, "site_id": other_org_site.pk}), 404)
    assert not Patient.objects.exists()


def test_a_missing_name_is_a_problem_naming_the_field(api, site):
    body = assert_problem(
        api.post("/api/v1/patients", {"site_id": site.pk, "external_id": "X"}), 422
    )
    assert {"first_name", "last_name"} <= {e["field"] for e in body["errors"]}


def test_a_duplicate_external_id_is_refused(api, site):
    assert api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}).status_code == 201
    assert_problem(api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}), 422)


def test_it_lists_reads_and_changes_patients(api, site, patient, other_org_site):
    factories.make_patient(other_org_site)
    listed = api.get("/api/v1/patients").json()
    assert [p["id"] for p in listed["items"]] == [patient.pk]
    assert api.get("/api/v1/patients", {"external_id": patient.external_id}).json()["items"]
    assert api.get("/api/v1/patients", {"external_id": "nobody"}).json()["items"] == []
    etag = api.get(f"/api/v1/patients/{patient.pk}")["ETag"]
    changed = api.patch(
        f"/api/v1/patients/{patient.pk}", {"last_name": "Moreno"}, {"If-Match": etag}
    )
    assert changed.status_code == 200 and changed.json()["last_name"] == "Moreno"
    assert changed["ETag"] != etag
    assert_problem(
        api.patch(f"/api/v1/patients/{patient.pk}", {"last_name": "X"}, {"If-Match": etag}), 412
    )


def test_a_null_for_a_required_field_is_refused(api, patient):
    assert_problem(api.patch(f"/api/v1/patients/{patient.pk}", {"first_name": None}), 422)


def test_another_organizations_patient_is_not_found(outsider_api, patient):
    assert_problem(outsider_api.get(f"/api/v1/patients/{patient.pk}"), 404)
    assert_problem(outsider_api.patch(f"/api/v1/patients/{patient.pk}", {"last_name": "X"}), 404)
    assert_problem(outsider_api.get(f"/api/v1/patients/{patient.pk}/contacts"), 404)
    assert outsider_api.get("/api/v1/patients").json()["items"] == []


def test_a_read_only_token_reads_patients_but_cannot_add_one(api_as, site, patient):
    reader = api_as(READ_ONLY)
    assert reader.get(f"/api/v1/patients/{patient.pk}").status_code == 200
    assert_problem(reader.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}), 403)
    assert_problem(reader.patch(f"/api/v1/patients/{patient.pk}", {"last_name": "X"}), 403)


def test_contacts_points_and_preferences(api, patient):
    contact = api.post(
        f"/api/v1/patients/{patient.pk}/contacts",
        {"position": 1, "relationship": "self", "first_name": "Ana", "last_name": "Lopez"},
    )
    assert contact.status_code == 201, contact.content
    contact_id = contact.json()["id"]
    point = api.post(
        f"/api/v1/contacts/{contact_id}/points", {"kind": "mobile", "value": "(202) 555-0142"}
    )
    assert point.status_code == 201, point.content
    assert point.json()["value"] == "+12025550142" and point.json()["raw_value"] == "(202) 555-0142"
    assert_problem(
        api.post(f"/api/v1/contacts/{contact_id}/points", {"kind": "email", "value": "nope"}), 422
    )
    pref = api.put(f"/api/v1/contacts/{contact_id}/preferences/reminders", {"value": "sms"})
    assert pref.status_code == 200, pref.content
    assert ContactPreference.objects.get(contact_id=contact_id, category="reminders").value == "sms"
    listed = api.get(f"/api/v1/contacts/{contact_id}/preferences").json()
    assert [(p["category"], p["value"]) for p in listed] == [("reminders", "sms")]
    assert api.get(f"/api/v1/patients/{patient.pk}/contacts").json()["items"][0]["id"] == contact_id
    point_id = point.json()["id"]
    moved = api.patch(f"/api/v1/contact-points/{point_id}", {"value": "+12025550143"})
    assert moved.status_code == 200 and moved.json()["value"] == "+12025550143"
    assert api.delete(f"/api/v1/contact-points/{point_id}").status_code == 204
    assert not ContactPoint.objects.filter(pk=point_id).exists()
    assert api.delete(f"/api/v1/contacts/{contact_id}").status_code == 204
    assert not Contact.objects.filter(pk=contact_id).exists()


def test_an_unknown_preference_category_is_a_problem(api, patient):
    contact = factories.make_contact(patient)
    response = api.put(f"/api/v1/contacts/{contact.pk}/preferences/holidays", {"value": "sms"})
    assert_problem(response, 422)
