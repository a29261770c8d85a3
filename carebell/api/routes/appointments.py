"""Appointments (SPEC §5.1) through carebell.appointments.actions.save_appointment,
which validates, saves, replans the appointment's messages in the same transaction
and audits. Reading needs view_patients, changing edit_patients."""

from __future__ import annotations

from ninja import Field, Router, Schema
from pydantic import AwareDatetime

from carebell.api.common import Id
from carebell.api.fields import in_schemas, out_schema
from carebell.api.resources import Resource, mount
from carebell.api.routes.people import held_by_a_patient
from carebell.appointments.actions import save_appointment
from carebell.appointments.models import Appointment
from carebell.planning import replan

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


def _save(appointment: Appointment, *, by) -> Appointment:
    """save_appointment, as one change of the request: when the appointment's site
    was read with its delivery settings (a new one: with its patient, in the
    owner's statement), the planner takes that site instead of reading it again."""
    with replan.once_at_end():
        site = appointment.site if Appointment.site.is_cached(appointment) else None
        if site is not None and "delivery" in site._state.fields_cache:
            replan.read_for_block(site)
        return save_appointment(appointment, by=by)


class AppointmentFilter(Schema):
    site_id: Id | None = None
    patient_id: Id | None = None
    starts_from: AwareDatetime | None = Field(None, description="starts at or after")
    starts_before: AwareDatetime | None = None


APPOINTMENTS = Resource(
    name="appointment", plural="appointments", collection="/appointments",
    item="/appointments/{appointment_id}",
    model=Appointment, out=AppointmentOut, create=AppointmentCreate, change=AppointmentChange,
    save=_save, filters=AppointmentFilter, **held_by_a_patient(Appointment),
    lookups={"starts_from": "starts_at__gte", "starts_before": "starts_at__lt"},
    summaries={
        "create": "Add an appointment (its messages are planned at once)",
        "change": "Change an appointment (moved, cancelled …: its messages are planned again)",
    },
)  # fmt: skip
mount(router, APPOINTMENTS, __name__)
