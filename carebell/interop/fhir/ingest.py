"""Plain data from carebell.interop.fhir.parsing → carebell rows, through the entry
points every door uses (people, appointments and pharmacy `actions`): each validates,
saves, replans in the caller's transaction and audits with the client's user as
actor. Nothing here calls `save()` on those models.
"""

from __future__ import annotations

import copy
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
from carebell.prepared import Prepared

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

    def call(self, save, obj, **checked):
        """An entry point's refusal is the client's problem: 422 with its words.
        `checked`: what the door looked up itself (see the entry point)."""
        try:
            return save(obj, by=self.user, source=SOURCE, now=self.now, **checked)
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
    return chosen_id(identifiers, lambda value: taken(value).exists(), length)


def chosen_id(identifiers, is_taken, length: int = 64) -> str:
    """`external_id`, asking `is_taken(value)` whether a row holds the value."""
    if identifiers:
        value = identifiers[0][1][:length]
        if not is_taken(value):
            return value
    return uuid.uuid4().hex[:length]


# Patients and their contacts ------------------------------------------------------------


def write_patient(data: PatientIn, patient: Patient | None, site, writer: Writer) -> Patient:
    created = patient is None
    if created:
        chosen = chosen_id(data.identifiers, lambda v: bool(_PATIENT_ID.rows(site.pk, v)))
        patient = Patient(site=site, source=SOURCE, external_id=chosen)
    patient.first_name, patient.last_name = data.first_name, data.last_name
    patient.birth_date, patient.is_active = data.birth_date, data.active
    patient.language = data.language
    # The external id was looked up above (a new one) or is the stored one's.
    writer.call(people_actions.save_patient, patient, key_checked=True)
    # Read once with their numbers (none for a new patient), kept for the rendering.
    contacts = [] if created else list(patient.contacts.prefetch_related("points"))
    own = next((c for c in contacts if c.relationship == "self"), None)
    if own is not None or any((data.telecom.mobile, data.telecom.home, data.telecom.email)):
        person = PersonIn(data.first_name, data.last_name, "self", data.telecom)
        own = _write_contact(person, own, patient, writer, language=data.language,
                             contacts=contacts)  # fmt: skip
    others = [c for c in contacts if c.relationship != "self"]
    for person in data.contacts:
        match = next((c for c in others if _same_person(c, person)), None)
        contact = _write_contact(person, match, patient, writer, language=data.language,
                                 contacts=contacts)  # fmt: skip
        if match is None:
            others.append(contact)
    _known(patient, "contacts", sorted(contacts, key=lambda c: c.position))
    return patient


#: Whether a FHIR patient of the site has this external id: every create asks it.
_PATIENT_ID = Prepared(
    lambda site_id, value: Patient.objects.filter(
        site_id=site_id, source=SOURCE, external_id=value
    ).values_list("pk")[:1],
    -7_200_101, "\x00external",
)  # fmt: skip


def _known(obj, name: str, rows: list) -> None:
    """Keep `rows` as `obj`'s `name` relation, as prefetch_related would: the
    response is rendered from what was just written, not read back."""
    related = getattr(obj, name).all()
    related._result_cache, related._prefetch_done = list(rows), True
    obj._prefetched_objects_cache = {**getattr(obj, "_prefetched_objects_cache", {}),
                                     name: related}  # fmt: skip


def write_related_person(data: PersonIn, contact: Contact | None, patient: Patient, writer):
    if contact is not None and contact.patient_id != patient.pk:
        raise unprocessable(
            "A related person stays with its patient: create a new one for another patient.",
            "RelatedPerson.patient",
        )
    return _write_contact(data, contact, patient, writer, language=patient.language,
                          contacts=None)  # fmt: skip


def _same_person(contact: Contact, person: PersonIn) -> bool:
    return (contact.first_name.casefold(), contact.last_name.casefold()) == (
        person.first_name.casefold(),
        person.last_name.casefold(),
    )


def _write_contact(person: PersonIn, contact, patient: Patient, writer: Writer, *, language,
                   contacts: list | None):  # fmt: skip
    """Save a contact of `patient`; `contacts`: the patient's contacts as read (with
    their points) in this transaction, which a new contact joins, or None (read)."""
    new = contact is None
    if new:
        read = contacts if contacts is not None else list(patient.contacts.all())
        position = max((c.position for c in read), default=0) + 1
        contact = Contact(patient=patient, position=position, language=language)
        if contacts is not None:
            contacts.append(contact)
    contact.first_name, contact.last_name = person.first_name, person.last_name
    contact.relationship = person.relationship
    contact.end_date = None if person.active else writer.now.date()
    writer.call(people_actions.save_contact, contact, position_checked=new)
    _write_points(contact, person.telecom, patient.site.phone_region, writer, new=new)
    return contact


def _write_points(contact: Contact, telecom: Telecom, region: str, writer: Writer, *, new=False):
    existing = {} if new else {p.kind: p for p in contact.points.all()}
    kept = dict(existing)
    for kind in (ContactPointKind.MOBILE, ContactPointKind.HOME, ContactPointKind.EMAIL):
        raw = getattr(telecom, kind.value)
        point = existing.get(kind.value)
        if not raw:
            if point is not None and _remove_point(point, writer):
                kept.pop(kind.value)
            continue
        value, is_valid = _normalised(kind, raw, region)
        if point is not None and point.value == value and point.raw_value == raw:
            continue
        point = point or ContactPoint(contact=contact, kind=kind.value)
        point.value, point.raw_value, point.is_valid = value, raw, is_valid
        writer.call(people_actions.save_contact_point, point, kind_checked=True)
        kept[kind.value] = point
    _known(contact, "points", list(kept.values()))


def _remove_point(point: ContactPoint, writer: Writer) -> bool:
    """Remove a number; False when it is kept (it has message or consent history)."""
    try:
        people_actions.remove_contact_point(point, by=writer.user, source=SOURCE, now=writer.now)
    except ValidationError:
        return False
    return True


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
    previous = copy.copy(appointment)  # the stored row, read under the request's lock
    if appointment is None:
        taken = Appointment.objects.filter(site=patient.site, source=SOURCE)
        appointment = Appointment(
            site=patient.site, patient=patient, source=SOURCE,
            external_id=external_id(data.identifiers, lambda v: taken.filter(external_id=v)),
        )  # fmt: skip
    _fill_appointment(appointment, data, writer.now)
    # The external id was looked up above (a new one) or is the stored one's.
    return writer.call(appointment_actions.save_appointment, appointment, key_checked=True,
                       previous=previous)  # fmt: skip


def new_appointments(items: list[tuple[AppointmentIn, Patient]], site, now) -> list[Appointment]:
    """Unsaved appointments of `site` for (data, patient) pairs, as write_appointment
    makes them one at a time: each takes its first identifier's value as external id
    unless a stored appointment or an earlier one of `items` has it (one query)."""
    wanted = {data.identifiers[0][1][:64] for data, _ in items if data.identifiers}
    taken = set(
        Appointment.objects.filter(site=site, source=SOURCE, external_id__in=wanted)
        .values_list("external_id", flat=True)
    ) if wanted else set()  # fmt: skip
    made = []
    for data, patient in items:
        value = data.identifiers[0][1][:64] if data.identifiers else ""
        if not value or value in taken:
            value = uuid.uuid4().hex
        taken.add(value)
        appointment = Appointment(site=site, patient=patient, source=SOURCE, external_id=value)
        _fill_appointment(appointment, data, now)
        made.append(appointment)
    return made


def _fill_appointment(appointment: Appointment, data: AppointmentIn, now) -> None:
    status = APPOINTMENT_STATUS[data.status]
    if not (status == AppointmentStatus.BOOKED and appointment.status in _STILL_BOOKED):
        appointment.status = status
    if status == AppointmentStatus.CANCELLED and appointment.cancelled_at is None:
        appointment.cancelled_at = now
    appointment.starts_at = data.starts_at
    appointment.duration_minutes = data.duration_minutes
    appointment.appointment_type = data.appointment_type
    appointment.provider_code, appointment.provider_name = data.provider_code, data.provider_name
    appointment.location_code, appointment.location_name = data.location_code, data.location_name


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
