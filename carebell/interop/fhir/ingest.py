"""Plain data from carebell.interop.fhir.parsing → carebell rows, through the entry
points every door uses (people, appointments and pharmacy `actions`): each validates,
saves, replans in the caller's transaction and audits with the client's user as
actor. Nothing here calls `save()` on those models.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

from django.core.exceptions import ValidationError

from carebell.appointments import actions as appointment_actions
from carebell.appointments.models import Appointment
from carebell.core.senders import normalise_phone
from carebell.core.vocab import AppointmentStatus, ContactPointKind, FillStep, PrescriptionStatus
from carebell.interop.fhir.outcomes import FhirError, unprocessable
from carebell.interop.fhir.parsing import (
    AppointmentIn,
    DispenseIn,
    PatientIn,
    PersonIn,
    PrescriptionIn,
    Telecom,
)
from carebell.people import actions as people_actions
from carebell.people.models import Contact, ContactPoint, Patient
from carebell.pharmacy import actions as pharmacy_actions
from carebell.pharmacy.models import Fill, Prescription

SOURCE = "fhir"

#: FHIR Appointment.status → carebell's. Proposed, pending and waitlisted ones are
#: held by the FHIR door (parsing.HELD_STATUSES): they plan nothing.
APPOINTMENT_STATUS = {
    "booked": AppointmentStatus.BOOKED,
    "arrived": AppointmentStatus.ARRIVED,
    "checked-in": AppointmentStatus.ARRIVED,
    "fulfilled": AppointmentStatus.COMPLETED,
    "cancelled": AppointmentStatus.CANCELLED,
    "noshow": AppointmentStatus.NO_SHOW,
    "entered-in-error": AppointmentStatus.DELETED,
}
#: A booked appointment a patient confirmed (or asked to cancel) stays so when the
#: source system, which knows nothing of it, sends "booked" again.
_STILL_BOOKED = {AppointmentStatus.CONFIRMED, AppointmentStatus.CANCEL_REQUESTED}

PRESCRIPTION_STATUS = {"active": PrescriptionStatus.ACTIVE, "completed": PrescriptionStatus.EXPIRED}

#: FHIR MedicationDispense.status → the fill's step (in-progress is "ready" once
#: prepared: the shape of the ready-for-pickup example).
_DISPENSE_STEP = {
    "preparation": FillStep.RECEIVED,
    "on-hold": FillStep.RECEIVED,
    "unknown": FillStep.RECEIVED,
    "completed": FillStep.PICKED_UP,
    "cancelled": FillStep.RETURNED_TO_STOCK,
    "stopped": FillStep.RETURNED_TO_STOCK,
    "declined": FillStep.RETURNED_TO_STOCK,
    "entered-in-error": FillStep.RETURNED_TO_STOCK,
}


class Writer:
    """Who writes (the token's user), when, and with what source label."""

    def __init__(self, user, now: dt.datetime):
        self.user, self.now = user, now

    def call(self, save, obj):
        """An entry point's refusal is the client's problem: 422 with its words."""
        try:
            return save(obj, by=self.user, source=SOURCE, now=self.now)
        except ValidationError as error:
            raise unprocessable(_sentence(error)) from None


def _sentence(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())[:500]
    return " ".join(error.messages)[:500]


def external_id(identifiers, taken, length: int = 64) -> str:
    """The source system's id: the first identifier's value, unless `taken` (a
    queryset of the rows it must not repeat, filtered by value) holds it already
    (the same value in another identifier system); else a new one."""
    if identifiers:
        value = identifiers[0][1][:length]
        if not taken(value).exists():
            return value
    return uuid.uuid4().hex[:length]


# Patients and their contacts ------------------------------------------------------------


def write_patient(data: PatientIn, patient: Patient | None, site, writer: Writer) -> Patient:
    if patient is None:
        taken = Patient.objects.filter(site=site, source=SOURCE)
        patient = Patient(site=site, source=SOURCE, external_id=external_id(
            data.identifiers, lambda v: taken.filter(external_id=v)))  # fmt: skip
    patient.first_name, patient.last_name = data.first_name, data.last_name
    patient.birth_date, patient.is_active = data.birth_date, data.active
    patient.language = data.language
    writer.call(people_actions.save_patient, patient)
    contacts = list(patient.contacts.all()) if patient.pk else []
    own = next((c for c in contacts if c.relationship == "self"), None)
    if own is not None or any((data.telecom.mobile, data.telecom.home, data.telecom.email)):
        person = PersonIn(data.first_name, data.last_name, "self", data.telecom)
        own = _write_contact(person, own, patient, writer, language=data.language)
    others = [c for c in contacts if c.relationship != "self"]
    for person in data.contacts:
        match = next((c for c in others if _same_person(c, person)), None)
        contact = _write_contact(person, match, patient, writer, language=data.language)
        if match is None:
            others.append(contact)
    return patient


def write_related_person(data: PersonIn, contact: Contact | None, patient: Patient, writer):
    if contact is not None and contact.patient_id != patient.pk:
        raise unprocessable(
            "A related person stays with its patient: create a new one for another patient.",
            "RelatedPerson.patient",
        )
    return _write_contact(data, contact, patient, writer, language=patient.language)


def _same_person(contact: Contact, person: PersonIn) -> bool:
    return (contact.first_name.casefold(), contact.last_name.casefold()) == (
        person.first_name.casefold(),
        person.last_name.casefold(),
    )


def _write_contact(person: PersonIn, contact, patient: Patient, writer: Writer, *, language):
    if contact is None:
        position = max((c.position for c in patient.contacts.all()), default=0) + 1
        contact = Contact(patient=patient, position=position, language=language)
    contact.first_name, contact.last_name = person.first_name, person.last_name
    contact.relationship = person.relationship
    contact.end_date = None if person.active else writer.now.date()
    writer.call(people_actions.save_contact, contact)
    _write_points(contact, person.telecom, patient.site.phone_region, writer)
    return contact


def _write_points(contact: Contact, telecom: Telecom, region: str, writer: Writer) -> None:
    existing = {p.kind: p for p in contact.points.all()}
    for kind in (ContactPointKind.MOBILE, ContactPointKind.HOME, ContactPointKind.EMAIL):
        raw = getattr(telecom, kind.value)
        point = existing.get(kind.value)
        if not raw:
            if point is not None:
                _remove_point(point, writer)
            continue
        value, is_valid = _normalised(kind, raw, region)
        if point is not None and point.value == value and point.raw_value == raw:
            continue
        point = point or ContactPoint(contact=contact, kind=kind.value)
        point.value, point.raw_value, point.is_valid = value, raw, is_valid
        writer.call(people_actions.save_contact_point, point)


def _remove_point(point: ContactPoint, writer: Writer) -> None:
    # A number with message or consent history is kept (the history points at it).
    with contextlib.suppress(ValidationError):
        people_actions.remove_contact_point(point, by=writer.user, source=SOURCE, now=writer.now)


def _normalised(kind: ContactPointKind, raw: str, region: str) -> tuple[str, bool]:
    if kind == ContactPointKind.EMAIL:
        value = raw.strip().lower()
        return value, "@" in value
    try:
        return normalise_phone(raw, region), True
    except ValueError:
        return raw.strip()[:254], False


# Appointments -----------------------------------------------------------------------------


def write_appointment(data: AppointmentIn, appointment, patient: Patient, writer: Writer):
    """Save a booked (or later) appointment; `data` must not be a held one."""
    if appointment is not None and appointment.patient_id != patient.pk:
        raise unprocessable("An appointment stays with its patient.", "Appointment.participant")
    if appointment is None:
        taken = Appointment.objects.filter(site=patient.site, source=SOURCE)
        appointment = Appointment(
            site=patient.site, patient=patient, source=SOURCE,
            external_id=external_id(data.identifiers, lambda v: taken.filter(external_id=v)),
        )  # fmt: skip
    status = APPOINTMENT_STATUS[data.status]
    if not (status == AppointmentStatus.BOOKED and appointment.status in _STILL_BOOKED):
        appointment.status = status
    if status == AppointmentStatus.CANCELLED and appointment.cancelled_at is None:
        appointment.cancelled_at = writer.now
    appointment.starts_at = data.starts_at
    appointment.duration_minutes = data.duration_minutes
    appointment.appointment_type = data.appointment_type
    appointment.provider_code, appointment.provider_name = data.provider_code, data.provider_name
    appointment.location_code, appointment.location_name = data.location_code, data.location_name
    return writer.call(appointment_actions.save_appointment, appointment)


# Prescriptions and fills ------------------------------------------------------------------


def write_prescription(data: PrescriptionIn, rx, patient: Patient, writer: Writer):
    if rx is not None and rx.patient_id != patient.pk:
        raise unprocessable("A prescription stays with its patient.", "MedicationRequest.subject")
    if rx is None:
        taken = Prescription.objects.filter(site=patient.site, source=SOURCE)
        number = external_id(data.identifiers, lambda v: taken.filter(rx_number=v), 32)
        rx = Prescription(site=patient.site, patient=patient, source=SOURCE, rx_number=number)
        rx.refills_remaining = data.refills_authorized
    else:
        used = rx.refills_authorized - rx.refills_remaining
        rx.refills_remaining = max(data.refills_authorized - used, 0)
    rx.refills_authorized = data.refills_authorized
    rx.status = PRESCRIPTION_STATUS.get(data.status, PrescriptionStatus.INACTIVE)
    rx.drug_name, rx.ndc, rx.prescriber_name = data.drug_name, data.ndc, data.prescriber_name
    if data.days_supply is not None:
        rx.days_supply = data.days_supply
    rx.written_on = data.written_on
    return writer.call(pharmacy_actions.save_prescription, rx)


def write_fill(data: DispenseIn, fill, rx: Prescription, writer: Writer):
    if fill is not None and fill.prescription_id != rx.pk:
        raise FhirError(422, "A dispense stays with its prescription.")
    if fill is None:
        number = max(rx.fills.values_list("fill_number", flat=True), default=-1) + 1
        fill = Fill(prescription=rx, fill_number=number, received_at=writer.now)
    fill.step = _step(data)
    fill.days_supply = data.days_supply or rx.days_supply
    fill.ready_at = data.prepared_at if fill.step in (FillStep.READY, FillStep.PICKED_UP) else None
    fill.picked_up_at = data.handed_over_at if fill.step == FillStep.PICKED_UP else None
    if fill.step == FillStep.PICKED_UP and fill.picked_up_at is None:
        fill.picked_up_at = writer.now
    if fill.step == FillStep.RETURNED_TO_STOCK and fill.returned_to_stock_at is None:
        fill.returned_to_stock_at = writer.now
    when = data.prepared_at or data.handed_over_at
    fill.filled_on = when.date() if when else (fill.filled_on or writer.now.date())
    return writer.call(pharmacy_actions.save_fill, fill)


def _step(data: DispenseIn) -> FillStep:
    return step_for(data.status, prepared=data.prepared_at is not None)


def step_for(status: str, *, prepared: bool) -> FillStep:
    """The fill step of a MedicationDispense.status."""
    if status == "in-progress":
        return FillStep.READY if prepared else FillStep.RECEIVED
    return _DISPENSE_STEP.get(status, FillStep.RECEIVED)
