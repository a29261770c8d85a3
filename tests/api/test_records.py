"""Appointments, prescriptions and fills through the API: each through its entry
point, which replans; tenancy and permissions on every route."""

from __future__ import annotations

import pytest

from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.pharmacy.models import Fill
from carebell.sites.roles import PHARMACY_STAFF, READ_ONLY
from tests import factories
from tests.api.conftest import assert_problem


@pytest.fixture
def patient(site):
    return factories.make_patient(site)


def test_it_adds_moves_and_cancels_an_appointment(api, patient):
    created = api.post(
        "/api/v1/appointments",
        {"patient_id": patient.pk, "external_id": "A-1", "starts_at": "2026-12-02T14:30:00Z"},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["site_id"], body["status"], body["source"]) == (patient.site_id, "booked", "api")
    moved = api.patch(
        f"/api/v1/appointments/{body['id']}",
        {"starts_at": "2026-12-03T09:00:00-05:00"},
        {"If-Match": created["ETag"]},
    )
    assert moved.status_code == 200 and moved.json()["starts_at"].startswith("2026-12-03T14:00:00")
    cancelled = api.patch(f"/api/v1/appointments/{body['id']}", {"status": "cancelled"})
    assert cancelled.json()["status"] == "cancelled"
    assert (
        AuditEvent.objects.filter(object_type="appointments.appointment", action="change").count()
        == 2
    )


def test_a_naive_time_or_an_unknown_status_is_refused(api, patient):
    base = {"patient_id": patient.pk, "external_id": "A-2"}
    assert_problem(
        api.post("/api/v1/appointments", {**base, "starts_at": "2026-12-02T14:30:00"}), 422
    )
    bad = {**base, "starts_at": "2026-12-02T14:30:00Z", "status": "maybe"}
    assert_problem(api.post("/api/v1/appointments", bad), 422)
    assert not Appointment.objects.exists()


def test_appointments_list_by_filters_and_stay_in_the_organization(api, outsider_api, patient):
    mine = factories.make_appointment(patient)
    assert [a["id"] for a in api.get("/api/v1/appointments").json()["items"]] == [mine.pk]
    assert api.get("/api/v1/appointments", {"patient_id": patient.pk + 1000}).json()["items"] == []
    assert outsider_api.get("/api/v1/appointments").json()["items"] == []
    assert_problem(outsider_api.get(f"/api/v1/appointments/{mine.pk}"), 404)
    assert_problem(outsider_api.get(f"/api/v1/appointments/{mine.pk}/explain"), 404)
    move = {"patient_id": patient.pk, "external_id": "A-3", "starts_at": "2026-12-02T14:30:00Z"}
    assert_problem(outsider_api.post("/api/v1/appointments", move), 404)


def test_a_read_only_token_cannot_book(api_as, patient):
    reader = api_as(READ_ONLY)
    body = {"patient_id": patient.pk, "external_id": "A-4", "starts_at": "2026-12-02T14:30:00Z"}
    assert_problem(reader.post("/api/v1/appointments", body), 403)


def test_prescriptions_and_fills(api_as, pharmacy):
    api = api_as(PHARMACY_STAFF, at=pharmacy)
    patient = factories.make_patient(pharmacy)
    rx = api.post(
        "/api/v1/prescriptions",
        {"patient_id": patient.pk, "rx_number": "6012345", "drug_name": "Amoxicillin 250 mg"},
    )
    assert rx.status_code == 201, rx.content
    rx_id = rx.json()["id"]
    fill = api.post(
        f"/api/v1/prescriptions/{rx_id}/fills",
        {"filled_on": "2026-11-25", "days_supply": 30, "step": "received"},
    )
    assert fill.status_code == 201, fill.content
    ready = api.patch(
        f"/api/v1/fills/{fill.json()['id']}", {"step": "ready", "ready_at": "2026-11-25T15:00:00Z"}
    )
    assert ready.status_code == 200 and Fill.objects.get().step == "ready"
    assert [f["id"] for f in api.get(f"/api/v1/prescriptions/{rx_id}/fills").json()["items"]] == [
        fill.json()["id"]
    ]
    changed = api.patch(f"/api/v1/prescriptions/{rx_id}", {"refills_remaining": 0})
    assert changed.json()["refills_remaining"] == 0
    why = api.get(f"/api/v1/prescriptions/{rx_id}/explain").json()
    assert why["lines"][0].startswith(f"prescription {rx_id}")
    assert_problem(
        api.post(
            f"/api/v1/prescriptions/{rx_id}/fills", {"filled_on": "someday", "days_supply": 30}
        ),
        422,
    )


def test_another_organizations_prescription_is_not_found(outsider_api, pharmacy):
    rx = factories.make_prescription(factories.make_patient(pharmacy))
    fill = factories.make_fill(rx)
    assert_problem(outsider_api.get(f"/api/v1/prescriptions/{rx.pk}"), 404)
    assert_problem(outsider_api.get(f"/api/v1/fills/{fill.pk}"), 404)
    assert_problem(outsider_api.patch(f"/api/v1/fills/{fill.pk}", {"step": "ready"}), 404)
