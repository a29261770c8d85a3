"""Create, read, update, versions, conditional writes, searches and their refusals."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.api import tokens
from carebell.audit.models import AuditEvent
from carebell.interop.fhir.models import FhirIdentifier, FhirRecord
from carebell.people import actions as people_actions
from carebell.people.models import Contact, Patient
from carebell.sites.models import StaffMembership
from carebell.sites.roles import READ_ONLY
from tests import factories
from tests.interop.fhir.conftest import client_for, patient_in

pytestmark = pytest.mark.django_db


def _patient(**overrides) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": overrides.pop("mrn", "MRN-1")}],
        "name": [{"family": "Rivera", "given": ["Sam"]}],
        "telecom": [{"system": "phone", "value": "+12025550123", "use": "mobile"}],
        **overrides,
    }


def test_a_created_patient_is_read_back_with_its_version_and_location(fhir):
    response = fhir.post("Patient", _patient())
    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json_body
    assert response["Location"] == f"Patient/{body['id']}/_history/1"
    assert response["ETag"] == 'W/"1"'
    read = fhir.get(f"Patient/{body['id']}")
    assert read.status_code == 200 and read.json_body == body


def test_creating_and_reading_are_audited_with_the_tokens_user_as_actor(fhir):
    body = patient_in(fhir)
    fhir.get(f"Patient/{body['id']}")
    created = AuditEvent.objects.get(action="create", object_type="people.patient")
    viewed = AuditEvent.objects.get(action="view", object_type="people.patient")
    assert created.actor == fhir.user and viewed.actor == fhir.user
    assert viewed.object_id == body["id"]


def test_an_update_moves_the_version_on_and_changes_the_patient(fhir):
    body = patient_in(fhir)
    changed = {**_patient(), "id": body["id"], "name": [{"family": "Rivera", "given": ["Alex"]}]}
    response = fhir.put(f"Patient/{body['id']}", changed, **{"If-Match": 'W/"1"'})
    assert response.status_code == 200 and response["ETag"] == 'W/"2"'
    assert Patient.objects.get(pk=body["id"]).first_name == "Alex"


def test_an_update_with_a_stale_if_match_is_refused_and_changes_nothing(fhir):
    body = patient_in(fhir)
    fhir.put(f"Patient/{body['id']}", {**_patient(), "id": body["id"]})
    stale = {**_patient(), "id": body["id"], "name": [{"family": "Other", "given": ["X"]}]}
    response = fhir.put(f"Patient/{body['id']}", stale, **{"If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert response.json_body["resourceType"] == "OperationOutcome"
    assert Patient.objects.get(pk=body["id"]).last_name == "Rivera"


def test_a_staff_edit_since_the_last_read_counts_as_a_new_version(fhir):
    body = patient_in(fhir)
    patient = Patient.objects.get(pk=body["id"])
    patient.last_name = "Edited"
    people_actions.save_patient(patient)
    assert fhir.get(f"Patient/{body['id']}")["ETag"] == 'W/"2"'
    response = fhir.put(f"Patient/{body['id']}", _patient(), **{"If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert Patient.objects.get(pk=body["id"]).last_name == "Edited"


def test_an_update_whose_id_is_not_the_urls_is_refused(fhir):
    body = patient_in(fhir)
    response = fhir.put(f"Patient/{body['id']}", {**_patient(), "id": "999"})
    assert response.status_code == 400


def test_an_unknown_patient_is_404(fhir):
    assert fhir.get("Patient/999999").status_code == 404
    assert fhir.get("Patient/not-a-number").status_code == 404
    assert fhir.put("Patient/999999", _patient()).status_code == 404


def test_conditional_create_answers_the_existing_patient_with_200(fhir):
    first = fhir.post("Patient", _patient(), **{"If-None-Exist": "identifier=urn:test:mrn|MRN-1"})
    again = fhir.post("Patient", _patient(), **{"If-None-Exist": "identifier=urn:test:mrn|MRN-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json_body["id"] == again.json_body["id"]
    assert Patient.objects.count() == 1


def test_a_plain_create_with_an_identifier_already_used_is_a_conflict(fhir):
    patient_in(fhir)
    response = fhir.post("Patient", _patient())
    assert response.status_code == 409
    assert Patient.objects.count() == 1


def test_a_new_resource_and_its_identifiers_are_written_together(fhir):
    body = _patient()
    body["identifier"].append({"system": "urn:test:chart", "value": "C-7"})
    with CaptureQueriesContext(connection) as captured:
        response = fhir.post("Patient", body)
    statements = [q["sql"].lstrip() for q in captured.captured_queries]  # before the next request
    assert response.status_code == 201
    record = FhirRecord.objects.get(resource_type="Patient", fhir_id=response.json_body["id"])
    assert record.object_id == int(response.json_body["id"]) and record.version == 1
    stored = record.identifiers.values_list("site_id", "resource_type", "system", "value")
    assert sorted(stored) == [(record.site_id, "Patient", "urn:test:chart", "C-7"),
                              (record.site_id, "Patient", "urn:test:mrn", "MRN-1")]  # fmt: skip
    read = fhir.get(f"Patient/{record.fhir_id}")
    assert read.json_body["identifier"] == response.json_body["identifier"]
    writes = [s for s in statements if s.startswith(("INSERT", "WITH")) and "interop_fhir_" in s]
    # On PostgreSQL the record's INSERT is a WITH clause of its identifiers' INSERT.
    assert len(writes) == (1 if connection.vendor == "postgresql" else 2)


def test_a_new_resource_whose_second_identifier_is_taken_writes_nothing(fhir):
    patient_in(fhir)  # holds urn:test:mrn|MRN-1
    body = _patient(mrn="MRN-2")
    body["identifier"].append({"system": "urn:test:mrn", "value": "MRN-1"})
    records = FhirRecord.objects.count()
    response = fhir.post("Patient", body)
    assert response.status_code == 409
    assert response.json_body["resourceType"] == "OperationOutcome"
    assert Patient.objects.count() == 1 and FhirRecord.objects.count() == records
    assert not FhirIdentifier.objects.filter(value="MRN-2").exists()


def test_conditional_update_creates_then_updates_by_identifier(fhir):
    url = "Patient?identifier=urn:test:mrn|MRN-7"
    made = fhir.put(url, _patient(mrn="MRN-7"))
    changed = fhir.put(url, _patient(mrn="MRN-7", birthDate="2016-01-02"))
    assert (made.status_code, changed.status_code) == (201, 200)
    assert changed.json_body["id"] == made.json_body["id"]
    assert changed.json_body["birthDate"] == "2016-01-02" and changed["ETag"] == 'W/"2"'


def test_criteria_matching_two_resources_are_refused_with_412(fhir):
    patient_in(fhir, mrn="A", identifier=[{"system": "urn:a", "value": "1"}])
    patient_in(fhir, mrn="B", identifier=[{"system": "urn:b", "value": "1"}])
    response = fhir.put("Patient?identifier=1", _patient(mrn="C"))
    assert response.status_code == 412


def test_telecom_changes_reach_the_self_contacts_numbers(fhir):
    body = patient_in(fhir)
    changed = _patient(telecom=[{"system": "email", "value": "Sam@Example.org"}])
    fhir.put(f"Patient/{body['id']}", changed)
    own = Contact.objects.get(patient_id=body["id"], relationship="self")
    assert [(p.kind, p.value) for p in own.points.all()] == [("email", "sam@example.org")]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"resourceType": "Appointment", "status": "booked"}', 400),
        (b'{"resourceType": "Patient", "birthDate": 12}', 400),
        (b'{"resourceType": "Patient", "name": "Sam"}', 400),
        (b'{"resourceType": "Patient", "active": [1]}', 400),
        (b'{"name": [{"family": "X", "given": ["Y"]}]}', 400),
        (b'{"resourceType": "Patient", "name": [{"family": "OnlyFamily"}]}', 422),
        (b'{"resourceType": "Patient", "name": [{"family": "X", "given": ["Y"]}], "x": 1}', 400),
    ],
)
def test_bad_bodies_are_refused_with_an_outcome_and_write_nothing(fhir, body, status):
    response = fhir.post("Patient", body)
    assert response.status_code == status
    assert response.json_body["resourceType"] == "OperationOutcome"
    assert response.json_body["issue"][0]["diagnostics"]
    assert not Patient.objects.exists()


def test_a_body_that_is_not_json_by_its_content_type_is_415(fhir):
    response = fhir.post("Patient", "name=Sam", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_no_token_or_a_revoked_one_is_401(fhir, site):
    anonymous = fhir.client.get("/fhir/R4/Patient")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"
    token = tokens.tokens_of(fhir.user).get()
    tokens.revoke(token, by=fhir.user)
    assert fhir.get("Patient").status_code == 401


def test_a_read_only_member_may_read_but_not_write(fhir, site):
    body = patient_in(fhir)
    reader = client_for(factories.make_staff(site, READ_ONLY))
    assert reader.get(f"Patient/{body['id']}").status_code == 200
    assert reader.post("Patient", _patient(mrn="Z")).status_code == 403


def test_another_organizations_token_sees_nothing_and_writes_nothing(fhir, other_fhir):
    body = patient_in(fhir)
    assert other_fhir.get(f"Patient/{body['id']}").status_code == 404
    assert other_fhir.get("Patient?identifier=MRN-1").json_body["entry"] == []
    assert other_fhir.put(f"Patient/{body['id']}", _patient()).status_code == 404
    appointment = {
        "resourceType": "Appointment", "status": "booked", "start": "2026-12-01T15:00:00Z",
        "participant": [{"actor": {"reference": f"Patient/{body['id']}"}, "status": "accepted"}],
    }  # fmt: skip
    response = other_fhir.post("Appointment", appointment)
    assert response.status_code == 422
    assert "not known" in response.json_body["issue"][0]["diagnostics"]


def test_a_user_with_two_sites_names_the_site_of_a_new_patient(site, org):
    second = factories.make_site(org, name="Maple Uptown")
    user = factories.make_staff(site, "Front Desk")
    StaffMembership.objects.create(user=user, site=second)
    client = client_for(user)
    assert client.post("Patient", _patient()).status_code == 422
    response = client.post("Patient", _patient(), **{"X-Carebell-Site": str(second.pk)})
    assert response.status_code == 201
    assert Patient.objects.get(pk=response.json_body["id"]).site == second
    foreign = factories.make_site(name="Not theirs")
    refused = client.post("Patient", _patient(mrn="Q"), **{"X-Carebell-Site": str(foreign.pk)})
    assert refused.status_code == 422


def _held(patient_id: str) -> dict:
    return {
        "resourceType": "Appointment",
        "status": "proposed",
        "identifier": [{"system": "urn:test:appt", "value": "REQ-1"}],
        "minutesDuration": 30,
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    }


def test_a_held_appointment_once_booked_keeps_its_id_and_plans_its_reminders(fhir, site):
    from carebell.appointments.models import Appointment
    from carebell.messaging.models import OutboxMessage
    from tests.interop.fhir.conftest import make_reachable
    from tests.messaging.engine_setup import enable

    enable(site, "appt_reminder", [{"days": 1}])
    patient = patient_in(fhir)
    make_reachable(patient["id"])
    held = fhir.post("Appointment", _held(patient["id"])).json_body
    assert not OutboxMessage.objects.exists()
    booked = {**_held(patient["id"]), "id": held["id"], "status": "booked",
              "start": "2026-11-28T15:00:00Z"}  # fmt: skip
    response = fhir.put(f"Appointment/{held['id']}", booked, **{"If-Match": 'W/"1"'})
    assert response.status_code == 200, response.json_body
    assert response.json_body["id"] == held["id"] and response["ETag"] == 'W/"2"'
    appointment = Appointment.objects.get()
    assert (appointment.status, appointment.duration_minutes) == ("booked", 30)
    assert OutboxMessage.objects.filter(entity_id=appointment.pk).count() == 1
    # Known by its first id only; it cannot go back to proposed.
    assert fhir.get(f"Appointment/{appointment.pk}").status_code == 404
    assert fhir.get(f"Appointment/{held['id']}").json_body["status"] == "booked"
    again = fhir.put(f"Appointment/{held['id']}", {**_held(patient["id"]), "id": held["id"]})
    assert again.status_code == 422


def test_a_cancelled_appointment_cancels_its_pending_reminders(fhir, site):
    from carebell.messaging.models import OutboxMessage
    from tests.interop.fhir.conftest import make_reachable
    from tests.messaging.engine_setup import enable

    enable(site, "appt_reminder", [{"days": 1}])
    patient = patient_in(fhir)
    make_reachable(patient["id"])
    booked = {**_held(patient["id"]), "status": "booked", "start": "2026-11-28T15:00:00Z"}
    made = fhir.post("Appointment", booked).json_body
    assert OutboxMessage.objects.get().status == "scheduled"
    fhir.put(f"Appointment/{made['id']}", {**booked, "id": made["id"], "status": "cancelled"})
    assert OutboxMessage.objects.get().status == "cancelled"
    assert fhir.get(f"Appointment/{made['id']}").json_body["status"] == "cancelled"


def test_a_related_person_cannot_move_to_another_patient(fhir):
    first, second = patient_in(fhir), patient_in(fhir, mrn="MRN-2")
    person = {"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{first['id']}"},
              "name": [{"family": "Rivera", "given": ["Jo"]}]}  # fmt: skip
    made = fhir.post("RelatedPerson", person).json_body
    moved = {**person, "patient": {"reference": f"Patient/{second['id']}"}}
    assert fhir.put(f"RelatedPerson/{made['id']}", moved).status_code == 422
    assert Contact.objects.get(pk=made["id"]).patient_id == int(first["id"])


def test_unknown_routes_and_methods_answer_with_an_outcome(fhir):
    for response in (fhir.get("Observation"), fhir.get("Patient/1/_history/1"),
                     fhir.client.delete("/fhir/R4/Patient/1", headers=fhir.headers)):  # fmt: skip
        assert response.status_code in (404, 405)
        assert response["Content-Type"].startswith("application/fhir+json")


def test_a_patients_confirmation_survives_the_source_sending_booked_again(fhir):
    from carebell.appointments import actions as appointment_actions
    from carebell.appointments.models import Appointment

    patient = patient_in(fhir)
    booked = {**_held(patient["id"]), "status": "booked", "start": "2026-11-28T15:00:00Z"}
    made = fhir.post("Appointment", booked).json_body
    appointment = Appointment.objects.get(pk=made["id"])
    appointment.status = "confirmed"
    appointment_actions.save_appointment(appointment)
    moved = {**booked, "id": made["id"], "start": "2026-11-28T16:00:00Z"}
    assert fhir.put(f"Appointment/{made['id']}", moved).status_code == 200
    appointment.refresh_from_db()
    assert appointment.status == "confirmed" and appointment.starts_at.hour == 16


def test_a_superuser_writes_to_the_only_site_and_references_its_patients(site):
    from django.contrib.auth import get_user_model

    from carebell.appointments.models import Appointment

    admin = get_user_model().objects.create_superuser("root-fhir", "root@example.org", "x" * 20)
    client = client_for(admin)
    made = client.post("Patient", _patient())
    assert made.status_code == 201
    assert Patient.objects.get(pk=made.json_body["id"]).site == site
    appointment = {
        "resourceType": "Appointment", "status": "booked", "start": "2026-12-03T15:00:00Z",
        "participant": [{"actor": {"reference": f"Patient/{made.json_body['id']}"},
                         "status": "accepted"}],
    }  # fmt: skip
    booked = client.post("Appointment", appointment)
    assert booked.status_code == 201
    assert Appointment.objects.get(pk=booked.json_body["id"]).patient_id == int(
        made.json_body["id"]
    )
    factories.make_site(name="A second one")  # now two sites: it must say which
    assert client.post("Patient", _patient(mrn="Q")).status_code == 422
