"""Plain data from a message (carebell.interop.hl7.mapping.Content) into carebell,
through the entry points every door uses: people.actions, appointments.actions and
pharmacy.actions. Each change replans in its transaction and is audited with the
feed as actor (`source`, "hl7:<app>/<facility>"); nothing that did not change is
saved again, so a feed that repeats itself leaves no trail.

Called inside the caller's transaction (carebell.interop.hl7.receive): a failure
anywhere undoes the whole message.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from dataclasses import dataclass
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q, QuerySet

from carebell.appointments.actions import save_appointment
from carebell.appointments.models import Appointment
from carebell.core.senders import normalise_email, normalise_phone
from carebell.core.vocab import AppointmentStatus, ContactPointKind, FillStep, PrescriptionStatus
from carebell.interop.hl7.mapping import (
    AppointmentData,
    Content,
    FillData,
    PatientData,
    Person,
    Point,
    PrescriptionData,
)
from carebell.interop.hl7.models import Hl7Applied
from carebell.people import actions as people
from carebell.people.models import Contact, ContactPoint, Patient
from carebell.pharmacy.actions import save_fill, save_prescription
from carebell.pharmacy.models import Fill, Prescription
from carebell.prepared import Prepared
from carebell.sites.models import Site
from carebell.sql import utc_params

_KEPT_WHEN_BOOKED = {
    AppointmentStatus.CONFIRMED,
    AppointmentStatus.CANCEL_REQUESTED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.COMPLETED,
}


@dataclass(frozen=True, slots=True)
class Feed:
    """Who a message is from: its site, the namespace of its ids, the audit actor."""

    site: Site
    source: str  # Patient.source / Appointment.source / Prescription.source
    actor: str  # the audit trail's system actor: "hl7:SCHApp/GHHSFacility"


class Mark(NamedTuple):
    """A watermark to store with the message (`mark_statements`): the MSH-7 of the newest
    message applied to an entity of the feed; `row_id` the stored one it moves on,
    None for a new one."""

    row_id: int | None
    entity: str
    external_id: str
    sent_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Applied:
    stale: bool
    summary: str
    #: Written with the message's row, in its transaction (carebell.interop.hl7.receive).
    marks: tuple[Mark, ...] = ()


def apply(feed: Feed, content: Content, now: dt.datetime) -> Applied:
    """Apply `content`; an appointment or prescription already changed by a newer
    message (MSH-7) is left as it is and the message reported stale. The watermarks
    the message moves on come back in `Applied.marks`, for the caller to store with
    the message (`mark_statements`) in this transaction."""
    sent_at = content.sent_at
    subject = _subject(content)
    patient_key = ("patient", content.patient.external_id)
    stored = _watermarks(feed, [k for k in (subject, patient_key) if k])
    mark = stored.get(subject) if subject else None
    if mark is not None and sent_at is not None and sent_at < mark.sent_at:
        return Applied(True, f"a newer message was applied to {subject[0]} {subject[1]}")
    known = stored.get(patient_key)
    fresh = known is None or sent_at is None or sent_at >= known.sent_at
    patient = upsert_patient(feed, content.patient, now, demographics=fresh)
    marks = []
    if fresh and content.demographics:
        marks.append(_moved(known, *patient_key, sent_at))
    if subject:
        marks.append(_moved(mark, *subject, sent_at))
    marks = tuple(m for m in marks if m is not None)
    if content.appointment is not None:
        appointment = upsert_appointment(feed, patient, content.appointment, now)
        summary = f"appointment {appointment.external_id}: {appointment.status}"
    elif content.prescription is not None:
        rx = upsert_prescription(feed, patient, content.prescription, now)
        summary = f"rx {rx.rx_number}: {rx.status}"
        if content.fill is not None:
            fill = upsert_fill(feed, rx, content.fill, sent_at or now, now)
            summary = f"rx {rx.rx_number} fill {fill.fill_number}: {fill.step}"
    else:
        summary = f"patient {patient.external_id}"
    return Applied(False, summary, marks)


def _subject(content: Content) -> tuple[str, str] | None:
    if content.appointment is not None:
        return "appointment", content.appointment.external_id
    if content.prescription is not None:
        return "prescription", content.prescription.rx_number
    return None


def _watermarks(feed: Feed, keys: list[tuple[str, str]]) -> dict[tuple, Hl7Applied]:
    """The MSH-7 of the newest message applied to each (entity, external id), locked
    until commit: one query, its rows locked in id order (two messages about the same
    appointment and patient take their locks in the same order)."""
    if not keys:
        return {}
    query = _WATERMARKS.get(len(keys))
    if query is None:
        query = _WATERMARKS[len(keys)] = Prepared(_watermarks_of, *_samples(len(keys)))
    values = [feed.site.pk, feed.source, *[part for key in keys for part in key]]
    return {(r.entity, r.external_id): r for r in query.objects(*values)}


def _watermarks_of(site_id, source, *parts) -> QuerySet:
    which = Q()
    for entity, external_id in zip(parts[::2], parts[1::2], strict=True):
        which |= Q(entity=entity, external_id=external_id)
    return (
        Hl7Applied.objects.select_for_update()
        .filter(which, site_id=site_id, source=source)
        .order_by("id")
    )


def _samples(keys: int) -> tuple:
    return (-7_100_001, "\x00source", *[f"\x00key{n}" for n in range(2 * keys)])


_WATERMARKS: dict[int, Prepared] = {}  # by the number of keys (one or two)


def _moved(row: Hl7Applied | None, entity: str, external_id: str, sent_at) -> Mark | None:
    """The watermark a message sent at `sent_at` leaves, or None if it leaves `row`
    (the stored one) as it is."""
    if sent_at is None or (row is not None and row.sent_at >= sent_at):
        return None
    return Mark(row.pk if row is not None else None, entity, external_id, sent_at)


_TABLE = Hl7Applied._meta.db_table
_INSERT_MARK = (
    f"INSERT INTO {_TABLE} (site_id, source, entity, external_id, sent_at)"
    " VALUES (%s, %s, %s, %s, %s)"
)
_UPDATE_MARK = f"UPDATE {_TABLE} SET sent_at = %s WHERE id = %s"


def mark_statements(feed: Feed, marks: tuple[Mark, ...]) -> list[tuple[str, list]]:
    """The statements that store `marks`, as (SQL, parameters): a new watermark is
    inserted (another process's at the same moment fails the unique constraint: one
    of the two messages is rolled back and applied again after the other), a stored
    one, locked by `_watermarks`, moves on."""
    statements = []
    for mark in marks:
        if mark.row_id is None:
            values = [feed.site.pk, feed.source, mark.entity, mark.external_id, mark.sent_at]
            statements.append((_INSERT_MARK, utc_params(values)))
        else:
            statements.append((_UPDATE_MARK, utc_params([mark.sent_at, mark.row_id])))
    return statements


# Patients and their contacts --------------------------------------------------------


class Known(NamedTuple):
    """A patient as a feed finds them: the row (locked), their contacts in order of
    position, and each contact's points by kind."""

    patient: Patient | None
    contacts: list[Contact]
    points: dict[int, dict[str, ContactPoint]]


def find_patient(feed: Feed, external_id: str) -> Known:
    """The patient of the feed's site known by `external_id`, locked for this
    transaction (messages for one patient are applied one at a time), with their
    contacts and numbers: one query. Each row comes with what it belongs to (the
    feed's site, the patient, the contact), so saving it looks nothing up."""
    rows = _PATIENT.rows(feed.site.pk, feed.source, external_id)
    if not rows:
        return Known(None, [], {})
    patient = _built(Patient, _PATIENT_FIELDS, rows[0], 0)
    patient.site = feed.site
    contacts: dict[int, Contact] = {}
    points: dict[int, dict[str, ContactPoint]] = {}
    for row in rows:
        contact_id, point_id = row[_CONTACT_AT], row[_POINT_AT]
        if contact_id is None:
            continue
        contact = contacts.get(contact_id)
        if contact is None:
            contact = contacts[contact_id] = _built(Contact, _CONTACT_FIELDS, row, _CONTACT_AT)
            contact.patient = patient
        if point_id is not None:
            point = _built(ContactPoint, _POINT_FIELDS, row, _POINT_AT)
            point.contact = contact
            points.setdefault(contact_id, {})[point.kind] = point
    return Known(patient, list(contacts.values()), points)


def _built(model, fields: tuple[str, ...], row: tuple, start: int):
    return model.from_db(DEFAULT_DB_ALIAS, fields, row[start : start + len(fields)])


def _columns(model) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


_PATIENT_FIELDS, _CONTACT_FIELDS, _POINT_FIELDS = map(_columns, (Patient, Contact, ContactPoint))
_CONTACT_AT = len(_PATIENT_FIELDS)
_POINT_AT = _CONTACT_AT + len(_CONTACT_FIELDS)


def _patient_rows(site_id, source, external_id) -> QuerySet:
    # The patient's row joined with each contact and each contact's point (none: NULLs),
    # only the patient's row locked (the contacts' side of the join may be empty).
    names = [f.name for f in Patient._meta.concrete_fields]
    names += [f"contacts__{f.name}" for f in Contact._meta.concrete_fields]
    names += [f"contacts__points__{f.name}" for f in ContactPoint._meta.concrete_fields]
    return (
        Patient.objects.select_for_update(of=("self",))
        .filter(site_id=site_id, source=source, external_id=external_id)
        .order_by("contacts__position", "contacts__points__id")
        .values_list(*names)
    )


# The questions every message asks, compiled once (carebell.prepared).
_PATIENT = Prepared(_patient_rows, -7_100_001, "\x00source", "\x00external")
_APPOINTMENT = Prepared(
    lambda site_id, source, external_id: Appointment.objects.select_for_update()
    .filter(site_id=site_id, source=source, external_id=external_id)
    .order_by("pk")[:1],
    -7_100_001, "\x00source", "\x00external",
)  # fmt: skip


def upsert_patient(feed: Feed, data: PatientData, now, *, demographics: bool) -> Patient:
    patient, contacts, points = find_patient(feed, data.external_id)
    created = patient is None
    if created:
        patient = Patient(site=feed.site, source=feed.source, external_id=data.external_id)
    elif not demographics:
        return patient  # a newer ADT already said who this is
    wanted = {"first_name": data.first_name, "last_name": data.last_name}
    if data.birth_date is not None:
        wanted["birth_date"] = data.birth_date
    if _assign(patient, wanted) or created:
        people.save_patient(patient, source=feed.actor, now=now)
    me = next((c for c in contacts if c.relationship == "self"), None)
    if me is not None or data.points:  # a child's PID without phones adds no "self"
        me = _upsert_contact(feed, patient, me, Person(data.first_name, data.last_name),
                             contacts, now)  # fmt: skip
        _upsert_points(feed, me, data.points, now, points.get(me.pk, {}))
    for kin in data.next_of_kin:
        match = next((c for c in contacts if c.relationship != "self" and _same_name(c, kin)), None)
        contact = _upsert_contact(feed, patient, match, kin, contacts, now)
        _upsert_points(feed, contact, kin.points, now, points.get(contact.pk, {}))
    return patient


def _same_name(contact: Contact, person: Person) -> bool:
    return (contact.first_name.casefold(), contact.last_name.casefold()) == (
        person.first_name.casefold(),
        person.last_name.casefold(),
    )


def _upsert_contact(feed, patient, contact, person: Person, contacts: list, now) -> Contact:
    if contact is None:
        position = max((c.position for c in contacts), default=0) + 1
        contact = Contact(patient=patient, position=position)
        contacts.append(contact)
    wanted = {
        "first_name": person.first_name or contact.first_name,
        "last_name": person.last_name or contact.last_name,
        "relationship": person.relationship,
    }
    if _assign(contact, wanted) or contact.pk is None:
        people.save_contact(contact, source=feed.actor, now=now)
    return contact


def _upsert_points(feed: Feed, contact: Contact, points: tuple[Point, ...], now, existing: dict):
    """`existing`: the contact's stored points by kind (none for a new contact)."""
    for point in points:
        value, valid = spelling(point, feed.site.phone_region)
        row = existing.get(point.kind) or ContactPoint(contact=contact, kind=point.kind)
        if _assign(row, {"value": value, "raw_value": point.raw, "is_valid": valid}):
            people.save_contact_point(row, source=feed.actor, now=now)


def spelling(point: Point, region: str) -> tuple[str, bool]:
    """The value carebell stores for a phone (E.164) or email, and whether it parsed;
    one that does not is kept as received, marked invalid, never messaged."""
    return _spelled(point.kind, point.raw, region)


# A pure function of its arguments, remembered: a feed sends the same patients'
# numbers message after message, and parsing a phone number is most of reading a PID.
@functools.lru_cache(maxsize=4096)
def _spelled(kind: ContactPointKind, raw: str, region: str) -> tuple[str, bool]:
    try:
        if kind == ContactPointKind.EMAIL:
            return normalise_email(raw), True
        return normalise_phone(raw, region), True
    except ValueError:
        return raw.strip()[:254], False


# Appointments -----------------------------------------------------------------------


def upsert_appointment(feed: Feed, patient: Patient, data: AppointmentData, now) -> Appointment:
    appointment = _APPOINTMENT.first(feed.site.pk, feed.source, data.external_id)
    previous = copy.copy(appointment)  # the stored row (None: new), for save_appointment
    if appointment is None:
        appointment = Appointment(site=feed.site, source=feed.source, external_id=data.external_id)
    status = data.status
    moved = appointment.pk is None or appointment.starts_at != data.starts_at
    if status == AppointmentStatus.BOOKED and not moved and appointment.status in _KEPT_WHEN_BOOKED:
        status = AppointmentStatus(appointment.status)  # the patient's confirmation stands
    wanted = {
        "patient_id": patient.pk,
        "starts_at": data.starts_at,
        "status": status,
        "location_code": data.location_code,
        "location_name": data.location_name,
        "provider_code": data.provider_code,
        "provider_name": data.provider_name,
        "appointment_type": data.appointment_type,
    }
    if data.duration_minutes:
        wanted["duration_minutes"] = data.duration_minutes
    if status == AppointmentStatus.CANCELLED:
        wanted["cancelled_at"] = appointment.cancelled_at or now
    elif appointment.cancelled_at is not None:
        wanted["cancelled_at"] = None  # reinstated ("Undo Cancel")
    if _assign(appointment, wanted) or appointment.pk is None:
        appointment.site, appointment.patient = feed.site, patient  # loaded: not looked up
        save_appointment(appointment, source=feed.actor, now=now, previous=previous,
                         key_checked=True)  # fmt: skip
    return appointment


# Prescriptions and fills ------------------------------------------------------------


def upsert_prescription(feed: Feed, patient: Patient, data: PrescriptionData, now):
    rx = (
        Prescription.objects.select_for_update()
        .filter(site=feed.site, source=feed.source, rx_number=data.rx_number)
        .first()
    )
    if rx is None:
        rx = Prescription(site=feed.site, source=feed.source, rx_number=data.rx_number)
    remaining = data.refills_remaining
    if remaining is None:
        remaining = data.refills_authorized if rx.pk is None else rx.refills_remaining
    wanted = {
        "patient_id": patient.pk,
        "drug_name": data.drug_name,
        "ndc": data.ndc,
        "refills_authorized": data.refills_authorized,
        "refills_remaining": min(remaining, data.refills_authorized),
        "status": PrescriptionStatus.ACTIVE if data.active else PrescriptionStatus.INACTIVE,
    }
    if data.prescriber_name:
        wanted["prescriber_name"] = data.prescriber_name
    if data.written_on:
        wanted["written_on"] = data.written_on
    if _assign(rx, wanted) or rx.pk is None:
        rx.site, rx.patient = feed.site, patient  # loaded: not looked up
        save_prescription(rx, source=feed.actor, now=now)
    return rx


def upsert_fill(feed: Feed, rx: Prescription, data: FillData, reached_at, now) -> Fill:
    fill = (
        Fill.objects.select_for_update()
        .filter(prescription=rx, fill_number=data.fill_number)
        .first()
    )
    if fill is None:
        fill = Fill(prescription=rx, fill_number=data.fill_number, days_supply=rx.days_supply,
                    received_at=reached_at)  # fmt: skip
    wanted = {"filled_on": data.filled_on}
    if fill.pk is None or data.step.order > FillStep(fill.step).order:  # steps only move on
        wanted["step"] = data.step
        wanted[f"{data.step.value}_at"] = getattr(fill, f"{data.step.value}_at") or reached_at
    if _assign(fill, wanted) or fill.pk is None:
        save_fill(fill, source=feed.actor, now=now)
    return fill


def _assign(obj, wanted: dict) -> bool:
    """Set the fields of `obj` that differ from `wanted`; True if any did."""
    changed = False
    for name, new in wanted.items():
        if getattr(obj, name) != new:
            setattr(obj, name, new)
            changed = True
    return changed
