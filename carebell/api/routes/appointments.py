"""Appointments (SPEC §5.1) through carebell.appointments.actions.save_appointment,
which validates, saves, replans the appointment's messages in the same transaction
and audits. Reading needs view_patients, changing edit_patients."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status
from pydantic import AwareDatetime

from carebell.api.common import (
    Id,
    PageParams,
    check_if_match,
    object_for,
    page_of,
    paginate,
    tagged,
    user_of,
    visible,
)
from carebell.api.fields import apply, in_schemas, out_schema
from carebell.api.routes.people import EDIT, VIEW
from carebell.appointments.actions import save_appointment
from carebell.appointments.models import Appointment
from carebell.people.models import Patient

router = Router(tags=["appointments"])

FIELDS = [
    "external_id",
    "starts_at",
    "duration_minutes",
    "appointment_type",
    "provider_code",
    "provider_name",
    "location_code",
    "location_name",
    "status",
]
AppointmentOut = out_schema(
    "AppointmentOut",
    Appointment,
    [
        "site",
        "patient",
        "source",
        *FIELDS,
        "confirmed_at",
        "cancelled_at",
        "created_at",
        "updated_at",
    ],
)
AppointmentCreate, AppointmentChange = in_schemas(
    "Appointment",
    Appointment,
    FIELDS,
    required=("external_id", "starts_at"),
    create_extra={"patient_id": (Id, ...)},
)


class AppointmentFilter(Schema):
    site_id: Id | None = None
    patient_id: Id | None = None
    starts_from: AwareDatetime | None = Field(None, description="starts at or after")
    starts_before: AwareDatetime | None = None


def _appointment(request, appointment_id: int, permission: str) -> Appointment:
    rows = Appointment.objects.select_related("site", "patient")
    return object_for(request, rows, "site", appointment_id, permission)


@router.get("/appointments", response=page_of(AppointmentOut), summary="Appointments")
def list_appointments(request: HttpRequest, page: PageParams, filters: Query[AppointmentFilter]):
    rows = visible(request, Appointment.objects.all(), "site", VIEW)
    if filters.site_id:
        rows = rows.filter(site_id=filters.site_id)
    if filters.patient_id:
        rows = rows.filter(patient_id=filters.patient_id)
    if filters.starts_from:
        rows = rows.filter(starts_at__gte=filters.starts_from)
    if filters.starts_before:
        rows = rows.filter(starts_at__lt=filters.starts_before)
    request.api_object_type = "appointments.appointment"
    return paginate(rows, page)


@router.post(
    "/appointments",
    response={201: AppointmentOut},
    summary="Add an appointment (its messages are planned at once)",
)
def create_appointment(request: HttpRequest, body: AppointmentCreate, response: HttpResponse):
    rows = Patient.objects.select_related("site")
    patient = object_for(request, rows, "site", body.patient_id, EDIT)
    appointment = Appointment(site=patient.site, patient=patient, source="api")
    apply(appointment, body, creating=True)
    save_appointment(appointment, by=user_of(request))
    response["Location"] = f"/api/v1/appointments/{appointment.pk}"
    return Status(201, tagged(response, AppointmentOut, appointment))


@router.get("/appointments/{appointment_id}", response=AppointmentOut, summary="One appointment")
def get_appointment(request: HttpRequest, appointment_id: Id, response: HttpResponse):
    return tagged(response, AppointmentOut, _appointment(request, appointment_id, VIEW))


@router.patch(
    "/appointments/{appointment_id}",
    response=AppointmentOut,
    summary="Change an appointment (moved, cancelled …: its messages are planned again)",
)
def change_appointment(
    request: HttpRequest, appointment_id: Id, body: AppointmentChange, response: HttpResponse
):
    appointment = _appointment(request, appointment_id, EDIT)
    check_if_match(request, AppointmentOut, appointment)
    apply(appointment, body, creating=False)
    save_appointment(appointment, by=user_of(request))
    return tagged(response, AppointmentOut, appointment)
