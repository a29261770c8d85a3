"""Every example of the shared vectors is accepted over HTTP and lands in carebell's
rows field by field. The examples reference each other by the spec's ids
(Patient/example, MedicationRequest/medrx0312); those references are pointed at the
resources this server made, the rest of each example is sent as published."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.appointments.models import Appointment
from carebell.messaging.models import OutboxMessage
from carebell.people.models import Contact, Patient
from carebell.pharmacy.models import Fill, Prescription
from tests.interop.fhir.conftest import create, make_reachable, vector, vector_bytes
from tests.messaging.engine_setup import enable

pytestmark = pytest.mark.django_db


def test_the_example_patient_maps_its_name_birth_date_phones_and_next_of_kin(fhir, site):
    response = fhir.post("Patient", vector_bytes("patient-example.json"))
    assert response.status_code == 201
    patient = Patient.objects.get(pk=response.json_body["id"])
    assert (patient.first_name, patient.last_name) == ("Peter James", "Chalmers")
    assert patient.birth_date == dt.date(1974, 12, 25) and patient.is_active
    assert (patient.source, patient.external_id, patient.site) == ("fhir", "12345", site)
    own, kin = patient.contacts.order_by("position")
    assert (own.relationship, own.position, kin.relationship) == ("self", 1, "other")
    points = {p.kind: p for p in own.points.all()}
    # The work number (rank 1) is the landline; the mobile keeps its rank-2 number;
    # the entry with only `use: home` and the old number are left out.
    assert points["home"].raw_value == "(03) 5555 6473"
    assert points["mobile"].raw_value == "(03) 3410 5613"
    assert set(points) == {"home", "mobile"}
    # Australian local numbers do not parse at a US site: kept as received, not valid.
    assert not points["mobile"].is_valid and points["mobile"].value == "(03) 3410 5613"
    assert (kin.first_name, kin.last_name) == ("Bénédicte", "du Marché")
    [kin_phone] = kin.points.all()
    assert (kin_phone.kind, kin_phone.value, kin_phone.is_valid) == ("home", "+33237998327", True)
    assert response.json_body["identifier"] == [
        {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}
    ]


def test_roel_keeps_his_e164_numbers_and_his_wife_as_a_contact(fhir):
    body = create(fhir, vector("patient-example-f201-roel.json"))
    patient = Patient.objects.get(pk=body["id"])
    assert (patient.first_name, patient.last_name, patient.birth_date) == (
        "Roelof Olaf", "Bor", dt.date(1960, 3, 13))  # fmt: skip
    own = patient.contacts.get(relationship="self")
    assert {p.kind: p.value for p in own.points.all()} == {
        "mobile": "+31612345678", "home": "+31201234567"}  # fmt: skip
    wife = patient.contacts.get(relationship="other")
    assert (wife.first_name, wife.last_name) == ("Ariadne", "Bor-Jansma")
    # The identifier listed twice in the example is one identifier.
    assert len(body["identifier"]) == 1


def test_the_infant_twin_is_reached_through_her_mother_only(fhir):
    body = create(fhir, vector("patient-example-infant-twin-1.json"))
    patient = Patient.objects.get(pk=body["id"])
    [mother] = patient.contacts.all()
    assert (mother.relationship, mother.position, mother.first_name, mother.last_name) == (
        "mother", 1, "Leia", "Organa")  # fmt: skip
    assert [(p.kind, p.value) for p in mother.points.all()] == [("mobile", "+31201234567")]
    assert len(body["identifier"]) == 2 and "telecom" not in body


def test_the_newborns_mother_becomes_a_contact_with_her_work_phone(fhir):
    newborn = create(fhir, vector("patient-example-infant-twin-1.json"))
    resource = vector("relatedperson-example-newborn-mom.json")
    resource["patient"]["reference"] = f"Patient/{newborn['id']}"
    body = create(fhir, resource)
    contact = Contact.objects.get(pk=body["id"])
    assert (contact.patient_id, contact.relationship) == (int(newborn["id"]), "mother")
    assert (contact.first_name, contact.last_name, contact.position) == ("Eve", "Everywoman", 2)
    [phone] = contact.points.all()
    # 555-555 numbers are fictional: kept as received and marked not valid.
    assert (phone.kind, phone.raw_value, phone.is_valid) == ("home", "555-555-2003", False)
    assert body["patient"] == {"reference": f"Patient/{newborn['id']}"}


def _appointment(name: str, patient_id: str) -> dict:
    resource = vector(name)
    resource["participant"][0]["actor"]["reference"] = f"Patient/{patient_id}"
    return resource


def test_the_booked_example_is_an_appointment_that_plans_its_reminders(fhir, site):
    enable(site, "appt_reminder", [{"days": 1}])
    patient = create(fhir, vector("patient-example-f201-roel.json"))
    make_reachable(patient["id"])
    resource = _appointment("appointment-example.json", patient["id"])
    start = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)
    # The example's own date (2013) is long past: nothing would be planned for it.
    resource["start"], resource["end"] = "2026-12-02T15:00:00Z", "2026-12-02T17:00:00Z"
    body = create(fhir, resource)
    appointment = Appointment.objects.get(pk=body["id"])
    assert (appointment.status, appointment.starts_at, appointment.duration_minutes) == (
        "booked", start, 120)  # fmt: skip
    assert (appointment.appointment_type, appointment.provider_code, appointment.provider_name) == (
        "FOLLOWUP", "example", "Dr Adam Careful")  # fmt: skip
    assert (appointment.location_code, appointment.location_name) == (
        "1", "South Wing, second floor")  # fmt: skip
    planned = OutboxMessage.objects.filter(entity_type="appointment", entity_id=appointment.pk)
    assert [m.kind for m in planned] == ["appt_reminder"]
    assert planned.get().to_address == "+31612345678"


def test_the_published_booked_example_as_is_is_accepted(fhir):
    patient = create(fhir, vector("patient-example.json"))
    body = create(fhir, _appointment("appointment-example.json", patient["id"]))
    appointment = Appointment.objects.get(pk=body["id"])
    assert appointment.starts_at == dt.datetime(2013, 12, 10, 9, 0, tzinfo=dt.UTC)
    assert body["status"] == "booked" and body["end"] == "2013-12-10T11:00:00Z"


def test_the_proposed_request_is_held_and_plans_nothing(fhir, site):
    enable(site, "appt_reminder", [{"days": 1}])
    patient = create(fhir, vector("patient-example-f201-roel.json"))
    make_reachable(patient["id"])
    body = create(fhir, _appointment("appointment-example-request.json", patient["id"]))
    assert body["id"].startswith("h") and body["status"] == "proposed"
    assert body["requestedPeriod"] == [{"start": "2016-06-02", "end": "2016-06-09"}]
    assert body["minutesDuration"] == 15
    assert not Appointment.objects.exists() and not OutboxMessage.objects.exists()
    read = fhir.get(f"Appointment/{body['id']}").json_body
    assert read["identifier"] == [
        {"system": "http://example.org/sampleappointment-identifier", "value": "123"}]  # fmt: skip
    assert read["participant"][0]["actor"]["reference"] == f"Patient/{patient['id']}"


def _prescription(fhir) -> tuple[dict, dict]:
    patient = create(fhir, vector("patient-example.json"))
    resource = vector("medicationrequest0312.json")
    resource["subject"]["reference"] = f"Patient/{patient['id']}"
    return patient, create(fhir, resource)


def test_the_medication_request_is_a_prescription_with_its_refills_and_supply(fhir, site):
    patient, body = _prescription(fhir)
    rx = Prescription.objects.get(pk=body["id"])
    assert (rx.patient_id, rx.site, rx.rx_number, rx.status) == (
        int(patient["id"]), site, "12345689", "active")  # fmt: skip
    assert (rx.drug_name, rx.prescriber_name) == (
        "Phenytoin 25mg/ml oral suspension",
        "Patrick Pump",
    )
    assert (rx.refills_authorized, rx.refills_remaining, rx.days_supply) == (3, 3, 30)
    assert rx.written_on == dt.date(2015, 1, 15)
    assert body["dispenseRequest"]["numberOfRepeatsAllowed"] == 3


def _dispense(name: str, patient: dict, rx: dict) -> dict:
    resource = vector(name)
    resource["subject"]["reference"] = f"Patient/{patient['id']}"
    resource["authorizingPrescription"][0]["reference"] = f"MedicationRequest/{rx['id']}"
    return resource


def test_the_completed_dispense_is_a_fill_picked_up_when_handed_over(fhir):
    patient, rx = _prescription(fhir)
    body = create(fhir, _dispense("medicationdispense0322.json", patient, rx))
    fill = Fill.objects.get(pk=body["id"])
    handed_over = dt.datetime(2015, 1, 18, 2, 13, tzinfo=dt.UTC)
    assert (fill.prescription_id, fill.fill_number, fill.step) == (int(rx["id"]), 0, "picked_up")
    assert (fill.days_supply, fill.picked_up_at) == (30, handed_over)
    assert fill.ready_at == dt.datetime(2015, 1, 16, 2, 13, tzinfo=dt.UTC)
    assert fill.filled_on == dt.date(2015, 1, 16)
    assert body["status"] == "completed" and body["whenHandedOver"] == "2015-01-18T02:13:00Z"


def test_the_in_progress_dispense_with_no_hand_over_is_ready_for_pickup(fhir):
    patient, rx = _prescription(fhir)
    body = create(fhir, _dispense("medicationdispense0318.json", patient, rx))
    fill = Fill.objects.get(pk=body["id"])
    assert (fill.step, fill.picked_up_at) == ("ready", None)
    assert fill.ready_at == dt.datetime(2015, 3, 16, 12, 13, tzinfo=dt.UTC)
    assert body["status"] == "in-progress"
    assert body["identifier"] == [{"system": "http://www.bmc.nl/portal/dispenses",
                                   "value": "12345689"}]  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        "communication-example.json",
        "communicationrequest-example.json",
        "communicationrequest-example-fm-solicit-attachment.json",
    ],
)
def test_messages_are_carebells_to_tell_not_a_clients_to_write(fhir, name):
    resource = vector(name)
    response = fhir.post(resource["resourceType"], vector_bytes(name))
    assert response.status_code in (404, 405)
    assert response.json_body["resourceType"] == "OperationOutcome"
