"""Transaction Bundles: all entries or none, urn:uuid references, an entry cap."""

from __future__ import annotations

import uuid

import pytest

from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.interop.fhir.models import FhirRecord
from carebell.people.models import Patient

pytestmark = pytest.mark.django_db


def _patient_entry(urn: str, mrn: str = "MRN-1") -> dict:
    return {
        "fullUrl": urn,
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:test:mrn", "value": mrn}],
            "name": [{"family": "Rivera", "given": ["Sam"]}],
            "telecom": [{"system": "phone", "value": "+12025550123", "use": "mobile"}],
        },
        "request": {"method": "POST", "url": "Patient"},
    }


def _appointment_entry(patient_ref: str, start: str = "2026-12-01T15:00:00Z") -> dict:
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": {
            "resourceType": "Appointment",
            "status": "booked",
            "start": start,
            "participant": [{"actor": {"reference": patient_ref}, "status": "accepted"}],
        },
        "request": {"method": "POST", "url": "Appointment"},
    }


def _bundle(*entries) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def test_a_transaction_creates_a_patient_and_the_appointments_that_reference_it(fhir):
    urn = f"urn:uuid:{uuid.uuid4()}"
    # The appointment comes first in the Bundle: it still runs after its patient.
    response = fhir.post("", _bundle(_appointment_entry(urn), _patient_entry(urn)))
    assert response.status_code == 200, response.json_body
    body = response.json_body
    assert body["type"] == "transaction-response"
    appointment, patient = (e["resource"] for e in body["entry"])
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created", "201 Created"]
    assert appointment["participant"][0]["actor"]["reference"] == f"Patient/{patient['id']}"
    assert Appointment.objects.get().patient_id == int(patient["id"])


def test_a_bad_entry_undoes_the_whole_transaction(fhir):
    urn = f"urn:uuid:{uuid.uuid4()}"
    bad = _appointment_entry(urn, start="not a time")
    response = fhir.post("", _bundle(_patient_entry(urn), _appointment_entry(urn), bad))
    assert response.status_code == 400
    assert "Bundle.entry[2]" in response.json_body["issue"][0]["diagnostics"]
    assert not Patient.objects.exists() and not Appointment.objects.exists()
    assert not FhirRecord.objects.exists()
    assert not AuditEvent.objects.filter(action="create", object_type="people.patient").exists()


def test_an_entry_carebell_cannot_take_undoes_the_whole_transaction(fhir):
    urn = f"urn:uuid:{uuid.uuid4()}"
    unknown = _appointment_entry("Patient/999999")
    response = fhir.post("", _bundle(_patient_entry(urn), unknown))
    assert response.status_code == 422
    assert not Patient.objects.exists()


def test_a_reference_to_no_entry_of_the_transaction_is_refused(fhir):
    response = fhir.post("", _bundle(_appointment_entry(f"urn:uuid:{uuid.uuid4()}")))
    assert response.status_code == 422


def test_a_transaction_may_update_by_criteria(fhir):
    urn = f"urn:uuid:{uuid.uuid4()}"
    fhir.post("", _bundle(_patient_entry(urn)))
    update = _patient_entry(urn)
    update["resource"]["birthDate"] = "2014-02-03"
    update["request"] = {"method": "PUT", "url": "Patient?identifier=urn:test:mrn|MRN-1"}
    response = fhir.post("", _bundle(update))
    assert response.json_body["entry"][0]["response"]["status"] == "200 OK"
    assert str(Patient.objects.get().birth_date) == "2014-02-03"


def test_more_entries_than_the_cap_are_refused_before_anything_is_read(fhir, settings):
    settings.FHIR_MAX_TRANSACTION_ENTRIES = 3
    urn = f"urn:uuid:{uuid.uuid4()}"
    entries = [_patient_entry(urn)] + [_appointment_entry(urn) for _ in range(3)]
    response = fhir.post("", _bundle(*entries))
    assert response.status_code == 413
    assert "at most 3" in response.json_body["issue"][0]["diagnostics"]
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Patient"},
        {"resourceType": "Bundle", "type": "batch", "entry": []},
        {"resourceType": "Bundle", "type": "transaction", "entry": {"a": 1}},
        {"resourceType": "Bundle", "type": "transaction", "entry": [1]},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {}}]},
        {"resourceType": "Bundle", "type": "transaction",
         "entry": [{"request": {"method": "DELETE", "url": "Patient/1"}, "resource": {}}]},
        {"resourceType": "Bundle", "type": "transaction",
         "entry": [{"request": {"method": "POST", "url": "Patient"},
                    "resource": {"resourceType": "Appointment"}}]},
        {"resourceType": "Bundle", "type": "transaction",
         "entry": [{"request": {"method": "POST", "url": "Nothing"},
                    "resource": {"resourceType": "Nothing"}}]},
    ],
)  # fmt: skip
def test_malformed_bundles_are_refused_with_an_outcome(fhir, bundle):
    response = fhir.post("", bundle)
    assert 400 <= response.status_code < 500
    assert response.json_body["resourceType"] == "OperationOutcome"


def test_a_transactions_appointments_are_created_together_planned_and_audited(fhir, site):
    from carebell.core.vocab import Kind
    from carebell.messaging.models import OutboxMessage
    from tests.messaging.engine_setup import enable, family

    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, _parent, _existing)] = family(site)
    entries = [_appointment_entry(f"Patient/{child.pk}", f"2026-12-0{day}T15:00:00Z")
               for day in (3, 4, 5)]  # fmt: skip
    entries[0]["resource"]["identifier"] = [{"system": "urn:test:visit", "value": "V-1"}]
    response = fhir.post("", _bundle(*entries))
    assert response.status_code == 200, response.json_body
    made = [e["resource"] for e in response.json_body["entry"]]
    assert [e["response"]["status"] for e in response.json_body["entry"]] == ["201 Created"] * 3
    rows = {str(a.pk): a for a in Appointment.objects.filter(source="fhir")}
    assert sorted(rows) == sorted(m["id"] for m in made)
    assert rows[made[0]["id"]].external_id == "V-1"
    assert made[0]["identifier"] == [{"system": "urn:test:visit", "value": "V-1"}]
    found = fhir.get("Appointment?identifier=urn:test:visit|V-1").json_body
    assert [e["resource"]["id"] for e in found["entry"]] == [made[0]["id"]]
    # Each one planned its reminder, and is audited with the client's user as actor.
    for fhir_id in rows:
        assert OutboxMessage.objects.filter(entity_id=int(fhir_id)).count() == 1
    events = AuditEvent.objects.filter(object_type="appointments.appointment", action="create")
    assert sorted(e.object_id for e in events) == sorted(rows)
    assert {e.actor_id for e in events} == {fhir.user.pk}
    assert all(e.detail["fields"] for e in events)


def test_a_refused_appointment_among_many_names_its_own_entry_and_undoes_them_all(fhir, site):
    patient = fhir.post("Patient", _patient_entry("urn:x")["resource"]).json_body
    entries = [_appointment_entry(f"Patient/{patient['id']}") for _ in range(3)]
    entries[1]["resource"]["participant"][0]["actor"]["reference"] = "Patient/999999"
    response = fhir.post("", _bundle(*entries))
    assert response.status_code == 422
    assert "Bundle.entry[1]" in response.json_body["issue"][0]["diagnostics"]
    assert not Appointment.objects.exists()
    assert not FhirRecord.objects.filter(resource_type="Appointment").exists()
    assert not AuditEvent.objects.filter(object_type="appointments.appointment").exists()


def test_an_identifier_given_twice_in_a_transaction_is_refused(fhir, site):
    patient = fhir.post("Patient", _patient_entry("urn:x")["resource"]).json_body
    entries = [_appointment_entry(f"Patient/{patient['id']}") for _ in range(2)]
    for entry in entries:
        entry["resource"]["identifier"] = [{"system": "urn:test:visit", "value": "V-2"}]
    response = fhir.post("", _bundle(*entries))
    assert response.status_code == 409
    assert "Bundle.entry[1]" in response.json_body["issue"][0]["diagnostics"]
    assert not Appointment.objects.exists()
