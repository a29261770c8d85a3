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
