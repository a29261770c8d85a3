"""Searches: each parameter a type serves, pages by `next` links, a capped _count,
and refusals for what is not served."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.audit.models import AuditEvent
from tests.interop.fhir.conftest import create, patient_in

pytestmark = pytest.mark.django_db


def _appointment(patient_id, start: str, status: str = "booked", mrn: str = "") -> dict:
    resource = {
        "resourceType": "Appointment",
        "status": status,
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    }
    if start:
        resource["start"] = start
    if mrn:
        resource["identifier"] = [{"system": "urn:test:appt", "value": mrn}]
    return resource


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.json_body
    return [e["resource"]["id"] for e in response.json_body["entry"]]


def _next(response) -> str | None:
    links = {link["relation"]: link["url"] for link in response.json_body["link"]}
    return links.get("next")


@pytest.fixture
def booked(fhir):
    patient = patient_in(fhir)
    other = patient_in(fhir, mrn="MRN-2")
    made = [
        create(fhir, _appointment(patient["id"], "2026-12-01T15:00:00Z", mrn="A1")),
        create(fhir, _appointment(patient["id"], "2026-12-02T15:00:00Z", status="cancelled")),
        create(fhir, _appointment(other["id"], "2026-12-03T15:00:00Z")),
        create(fhir, _appointment(patient["id"], "", status="proposed", mrn="P1")),
    ]
    return patient, other, [m["id"] for m in made]


def test_appointments_by_patient_include_the_held_ones(fhir, booked):
    patient, other, ids = booked
    assert _ids(fhir.get(f"Appointment?patient=Patient/{patient['id']}")) == [
        ids[0],
        ids[1],
        ids[3],
    ]
    assert _ids(fhir.get(f"Appointment?patient={other['id']}")) == [ids[2]]


def test_appointments_by_date_with_prefixes(fhir, booked):
    _patient, _other, ids = booked
    assert _ids(fhir.get("Appointment?date=2026-12-02")) == [ids[1]]
    assert _ids(fhir.get("Appointment?date=ge2026-12-02")) == [ids[1], ids[2]]
    assert _ids(fhir.get("Appointment?date=lt2026-12-02&date=ge2026-12-01")) == [ids[0]]
    assert _ids(fhir.get("Appointment?date=2026-12")) == ids[:3]


def test_appointments_by_status_and_identifier(fhir, booked):
    _patient, _other, ids = booked
    assert _ids(fhir.get("Appointment?status=booked")) == [ids[0], ids[2]]
    assert _ids(fhir.get("Appointment?status=cancelled,proposed")) == [ids[1], ids[3]]
    assert _ids(fhir.get("Appointment?identifier=urn:test:appt|A1")) == [ids[0]]
    assert _ids(fhir.get("Appointment?identifier=P1")) == [ids[3]]
    assert _ids(fhir.get("Appointment?identifier=urn:other|A1")) == []


def test_last_updated_selects_by_when_the_resource_changed(fhir, booked):
    assert len(_ids(fhir.get("Appointment?_lastUpdated=ge2026-11-25"))) == 4
    assert _ids(fhir.get("Appointment?_lastUpdated=lt2026-11-25")) == []


def test_pages_follow_next_links_to_the_end_without_repeats(fhir, booked):
    _patient, _other, ids = booked
    seen, url = [], "Appointment?_count=1"
    while url:
        response = fhir.get(url.split("/fhir/R4/")[-1])
        seen += _ids(response)
        url = _next(response)
    assert seen == ids


def test_count_is_capped(fhir):
    for n in range(3):
        patient_in(fhir, mrn=f"M{n}")
    response = fhir.get("Patient?_count=100000")
    assert len(_ids(response)) == 3 and _next(response) is None
    assert fhir.get("Patient?_count=0").status_code == 400
    assert fhir.get("Patient?_count=many").status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "Patient?name=Rivera",
        "Patient?identifier:exact=MRN-1",
        "Patient?patient=1",
        "Appointment?practitioner=1",
        "Appointment?status=maybe",
        "Appointment?date=yesterday",
        "Appointment?date=ne2026-12-01",
        "Appointment?_cursor=zz",
        "Communication?identifier=1",
        "MedicationRequest?date=2026-12-01",
    ],
)
def test_an_unsupported_or_malformed_parameter_is_refused_not_ignored(fhir, query):
    response = fhir.get(query)
    assert response.status_code == 400
    assert response.json_body["resourceType"] == "OperationOutcome"


def test_searches_are_audited_as_lists(fhir, booked):
    fhir.get("Appointment?status=booked")
    entry = AuditEvent.objects.filter(action="list", object_type="appointments.appointment").get()
    assert entry.actor == fhir.user and entry.detail["filters"] == ["status"]


def test_prescriptions_and_dispenses_by_patient_and_status(fhir):
    patient = patient_in(fhir)
    rx = create(fhir, {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "Lisinopril 10 mg"},
        "subject": {"reference": f"Patient/{patient['id']}"},
        "dispenseRequest": {"numberOfRepeatsAllowed": 2,
                            "expectedSupplyDuration": {"value": 4, "code": "wk"}},
    })  # fmt: skip
    assert rx["dispenseRequest"]["expectedSupplyDuration"]["value"] == 28
    fill = create(fhir, {
        "resourceType": "MedicationDispense", "status": "preparation",
        "medicationCodeableConcept": {"text": "Lisinopril 10 mg"},
        "subject": {"reference": f"Patient/{patient['id']}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx['id']}"}],
    })  # fmt: skip
    assert _ids(fhir.get(f"MedicationRequest?patient={patient['id']}&status=active")) == [rx["id"]]
    assert _ids(fhir.get("MedicationRequest?status=stopped")) == []
    assert _ids(fhir.get(f"MedicationDispense?patient={patient['id']}")) == [fill["id"]]
    assert _ids(fhir.get("MedicationDispense?status=completed")) == []


def test_related_people_by_patient(fhir):
    patient = patient_in(fhir)
    person = create(fhir, {
        "resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{patient['id']}"},
        "relationship": [{"coding": [{"code": "FTH"}]}], "name": [{"family": "Rivera",
        "given": ["Jo"]}], "identifier": [{"system": "urn:rp", "value": "9"}],
    })  # fmt: skip
    assert _ids(fhir.get(f"RelatedPerson?patient={patient['id']}")) == [person["id"]]
    assert _ids(fhir.get("RelatedPerson?identifier=urn:rp|9")) == [person["id"]]
    assert person["relationship"][0]["text"] == "father"


def test_the_capability_statement_lists_what_the_handlers_serve(fhir, client):
    from carebell.interop.fhir.handlers import HANDLERS

    statement = client.get("/fhir/R4/metadata").json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert list(resources) == list(HANDLERS)
    assert {p["name"] for p in resources["Appointment"]["searchParam"]} == {
        "_id", "identifier", "_lastUpdated", "patient", "status", "date"}  # fmt: skip
    assert [i["code"] for i in resources["Communication"]["interaction"]] == [
        "read", "search-type"]  # fmt: skip
    assert statement["fhirVersion"] == "4.0.1"
    # Each listed search parameter answers; one not listed is refused.
    for name, resource in resources.items():
        for param in resource["searchParam"]:
            value = {"date": "ge2026-01-01", "reference": "1"}.get(param["type"], "1")
            if param["name"] == "status":
                value = next(iter(HANDLERS[name].status_map))
            assert fhir.get(f"{name}?{param['name']}={value}").status_code == 200


def test_date_search_values_are_ranges():
    from carebell.interop.fhir.search import parse_date

    day = parse_date("2026-12-01")
    assert day.lower == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert day.upper == dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    assert parse_date("gt2026-12").lower == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert parse_date("le2026").upper == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    minute = parse_date("2026-12-01T10:00+02:00")
    assert minute.lower == dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    assert minute.upper - minute.lower == dt.timedelta(minutes=1)


def test_the_capability_statement_is_valid_fhir(client):
    from carebell.interop.fhir import parsing

    parsing.validate(client.get("/fhir/R4/metadata").json(), "CapabilityStatement")
