"""carebell rows → FHIR R4 JSON (plain dicts). What a client reads back is what
carebell holds now — a staff edit included — not a copy of what was sent."""

from __future__ import annotations

import datetime as dt

from carebell.core.vocab import AppointmentStatus, Channel, FillStep, OutboxStatus
from carebell.interop.fhir import ingest

V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
CHANNEL_SYSTEM = "urn:carebell:channel"
KIND_SYSTEM = "urn:carebell:message-kind"
UCUM = "http://unitsofmeasure.org"

_ROLE_CODES = {"mother": "MTH", "father": "FTH", "guardian": "GUARD", "self": "ONESELF"}
_APPOINTMENT_STATUS = {
    AppointmentStatus.BOOKED: "booked",
    AppointmentStatus.CONFIRMED: "booked",
    AppointmentStatus.CANCEL_REQUESTED: "booked",
    AppointmentStatus.ARRIVED: "arrived",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.NO_SHOW: "noshow",
    AppointmentStatus.DELETED: "entered-in-error",
}
_PRESCRIPTION_STATUS = {"active": "active", "expired": "completed"}
_FILL_STATUS = {
    FillStep.READY: "in-progress",
    FillStep.PICKED_UP: "completed",
    FillStep.RETURNED_TO_STOCK: "cancelled",
}
#: Outbox status → Communication.status (event-status).
_MESSAGE_STATUS = {
    OutboxStatus.SCHEDULED: "preparation",
    OutboxStatus.QUEUED: "preparation",
    OutboxStatus.SENDING: "in-progress",
    OutboxStatus.SENT: "completed",
    OutboxStatus.DELIVERED: "completed",
    OutboxStatus.UNDELIVERED: "stopped",
    OutboxStatus.FAILED: "stopped",
    OutboxStatus.CANCELLED: "not-done",
    OutboxStatus.BLOCKED: "not-done",
}
#: Communication.status search value → outbox statuses.
MESSAGE_STATUSES_OF = {}
for _status, _code in _MESSAGE_STATUS.items():
    MESSAGE_STATUSES_OF.setdefault(_code, []).append(_status.value)
_MEDIUM = {
    Channel.SMS: ("WRITTEN", "written", "SMS"),
    Channel.EMAIL: ("EMAILWRIT", "email", "Email"),
    Channel.CALL: ("PHONE", "telephone", "Voice call"),
}


def instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def meta(version: int, last_updated: dt.datetime) -> dict:
    return {"versionId": str(version), "lastUpdated": instant(last_updated)}


def identifiers(record) -> list[dict]:
    if record is None:
        return []
    pairs = getattr(record, "known_identifiers", None)  # just written: no query
    if pairs is None:
        rows = sorted(record.identifiers.all(), key=lambda i: i.pk)
        pairs = [(i.system, i.value) for i in rows]
    return [{"system": s, "value": v} if s else {"value": v} for s, v in pairs]


def _name(first: str, last: str, use: str = "official") -> dict:
    return {"use": use, "family": last, "given": first.split()}


def _telecom(contact) -> list[dict]:
    points = []
    for point in sorted(contact.points.all(), key=lambda p: p.kind):
        system = "email" if point.kind == "email" else "phone"
        entry = {"system": system, "value": point.value}
        if point.kind != "email":
            entry["use"] = point.kind
        points.append(entry)
    return points


def _relationship(contact) -> list[dict]:
    code = _ROLE_CODES.get(contact.relationship)
    concept = {"text": contact.relationship}
    if code:
        concept["coding"] = [{"system": V3_ROLE, "code": code}]
    return [concept]


def _clean(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if v not in (None, [], "", {})}


def patient(row, common: dict) -> dict:
    contacts = list(row.contacts.all())
    own = next((c for c in contacts if c.relationship == "self"), None)
    others = [c for c in contacts if c.relationship != "self"]
    return _clean({
        **common,
        "active": row.is_active,
        "name": [_name(row.first_name, row.last_name)],
        "telecom": _telecom(own) if own else [],
        "birthDate": row.birth_date.isoformat() if row.birth_date else None,
        "communication": [{"language": {"coding": [
            {"system": "urn:ietf:bcp:47", "code": row.language}]}, "preferred": True}],
        "contact": [_clean({
            "relationship": _relationship(c),
            "name": _name(c.first_name, c.last_name, "usual"),
            "telecom": _telecom(c),
        }) for c in others],
    })  # fmt: skip


def related_person(row, common: dict) -> dict:
    today = dt.date.today()
    return _clean({
        **common,
        "active": row.end_date is None or row.end_date > today,
        "patient": {"reference": f"Patient/{row.patient_id}"},
        "relationship": _relationship(row),
        "name": [_name(row.first_name, row.last_name)],
        "telecom": _telecom(row),
    })  # fmt: skip


def appointment(row, common: dict, fhir_status: str = "") -> dict:
    status = _APPOINTMENT_STATUS[AppointmentStatus(row.status)]
    if fhir_status and ingest.APPOINTMENT_STATUS.get(fhir_status) == row.status:
        status = fhir_status  # "checked-in" read back as sent, not as "arrived"
    participants = [{
        "actor": {"reference": f"Patient/{row.patient_id}"},
        "status": "accepted" if row.status == AppointmentStatus.CONFIRMED else "needs-action",
    }]  # fmt: skip
    for kind, code, name in (
        ("Practitioner", row.provider_code, row.provider_name),
        ("Location", row.location_code, row.location_name),
    ):
        if code or name:
            actor = {"reference": f"{kind}/{code}"} if code else {}
            participants.append({"actor": {**actor, **({"display": name} if name else {})},
                                 "status": "accepted"})  # fmt: skip
    ends = row.starts_at + dt.timedelta(minutes=row.duration_minutes)
    return _clean({
        **common,
        "status": status,
        "appointmentType": {"coding": [{"code": row.appointment_type}]}
        if row.appointment_type else None,
        "start": instant(row.starts_at),
        "end": instant(ends),
        "minutesDuration": row.duration_minutes,
        "participant": participants,
    })  # fmt: skip


def held_appointment(record, common: dict) -> dict:
    """The held resource as received, under its id and version here."""
    return {**common, **{k: v for k, v in record.held.items() if k not in common}}


def _medication(rx) -> dict:
    concept = {"text": rx.drug_name}
    if rx.ndc:
        concept["coding"] = [{"system": "http://hl7.org/fhir/sid/ndc", "code": rx.ndc}]
    return concept


def medication_request(row, common: dict, fhir_status: str = "") -> dict:
    status = _PRESCRIPTION_STATUS.get(row.status, "stopped")
    if fhir_status and ingest.PRESCRIPTION_STATUS.get(fhir_status, "inactive") == row.status:
        status = fhir_status
    return _clean({
        **common,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _medication(row),
        "subject": {"reference": f"Patient/{row.patient_id}"},
        "authoredOn": row.written_on.isoformat() if row.written_on else None,
        "requester": {"display": row.prescriber_name} if row.prescriber_name else None,
        "dispenseRequest": {
            "numberOfRepeatsAllowed": row.refills_authorized,
            "expectedSupplyDuration": {"value": row.days_supply, "unit": "days",
                                       "system": UCUM, "code": "d"},
        },
    })  # fmt: skip


def medication_dispense(row, common: dict, fhir_status: str = "") -> dict:
    rx = row.prescription
    status = _FILL_STATUS.get(FillStep(row.step), "preparation")
    if fhir_status and ingest.step_for(fhir_status, prepared=row.ready_at is not None) == row.step:
        status = fhir_status
    return _clean({
        **common,
        "status": status,
        "medicationCodeableConcept": _medication(rx),
        "subject": {"reference": f"Patient/{rx.patient_id}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx.pk}"}],
        "daysSupply": {"value": row.days_supply, "unit": "days", "system": UCUM, "code": "d"},
        "whenPrepared": instant(row.ready_at),
        "whenHandedOver": instant(row.picked_up_at),
    })  # fmt: skip


def communication(row, common: dict) -> dict:
    code, display, text = _MEDIUM[Channel(row.channel)]
    coding = [
        {"system": PARTICIPATION_MODE, "code": code, "display": display},
        {"system": CHANNEL_SYSTEM, "code": row.channel},
    ]
    medium = {"coding": coding, "text": text}
    if row.contact_id is None or row.contact is None or row.contact.relationship == "self":
        recipient = f"Patient/{row.patient_id}" if row.patient_id else None
    else:
        recipient = f"RelatedPerson/{row.contact_id}"
    about = {"appointment": "Appointment", "prescription": "MedicationRequest", "fill":
             "MedicationDispense"}.get(row.entity_type)  # fmt: skip
    delivered = row.status == OutboxStatus.DELIVERED
    return _clean({
        **common,
        "status": _MESSAGE_STATUS[OutboxStatus(row.status)],
        "category": [{"coding": [{"system": KIND_SYSTEM, "code": row.kind}]}],
        "medium": [medium],
        "subject": {"reference": f"Patient/{row.patient_id}"} if row.patient_id else None,
        "about": [{"reference": f"{about}/{row.entity_id}"}] if about and row.entity_id else None,
        "sent": instant(row.sent_at),
        "received": instant(row.finished_at) if delivered else None,
        "recipient": [{"reference": recipient}] if recipient else None,
        "payload": [{"contentString": row.body}] if row.body else None,
    })  # fmt: skip
