"""Per kind of file: a batch of parsed rows checked against the database (`prepare`,
a few queries per batch) and then written through the entry points (`write`): a
batch's patients, contacts, numbers and preferences in one people.bulk.save_people,
its appointments in one save_appointments.

`prepare` loads what the rows name, applies each row's given cells to the stored
record (or a new one) in memory, and validates the result as the entry point will —
so a dry run reports what the apply would refuse — and counts what would be created
or changed. A record none of whose given cells differ is not written at all.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from carebell.appointments import actions as appointment_actions
from carebell.appointments.models import Appointment
from carebell.core.vocab import ConsentSource, ContactPointKind, FillStep, Relationship
from carebell.interop.csv.columns import FileKind
from carebell.interop.csv.parse import Parsed
from carebell.interop.csv.rows import Problem
from carebell.people import bulk as people_bulk
from carebell.people import consent
from carebell.people.models import (
    ConsentRecord,
    Contact,
    ContactPoint,
    ContactPreference,
    Patient,
)
from carebell.pharmacy import actions as pharmacy
from carebell.pharmacy.models import Fill, Prescription


@dataclass
class Plan:
    problems: list[Problem] = field(default_factory=list)
    steps: list = field(default_factory=list)
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    first_row: int = 0

    def count(self, created: bool, changed: bool) -> None:
        if created:
            self.created += 1
        elif changed:
            self.changed += 1
        else:
            self.unchanged += 1


def assign(obj, **values) -> bool:
    """Set the given (not None) values on `obj`; True if any differed."""
    differs = False
    for name, value in values.items():
        if value is not None and getattr(obj, name) != value:
            setattr(obj, name, value)
            differs = True
    return differs


def check(obj, row: int, columns: dict[str, str], cells: dict[str, str], plan: Plan) -> bool:
    """Validate `obj`'s own fields as its entry point will (foreign keys, uniqueness
    and constraints are the handler's business); problems named by column."""
    errors = people_bulk.field_errors(obj)
    for name, messages in errors.items():
        column = columns.get(name, "")
        reason = f"{column.replace('_', ' ') or name}: {' '.join(messages)}"
        plan.problems.append(Problem(row, column, cells.get(column, ""), reason.rstrip(".")))
    return not errors


class Handler:
    kind: FileKind

    def __init__(self, site, source: str) -> None:
        self.site, self.source = site, source

    @staticmethod
    def batch_key(parsed: Parsed):
        return parsed.row

    def said(self, key: tuple) -> str:
        raise NotImplementedError

    def prepare(self, rows: list) -> Plan:
        raise NotImplementedError

    def write(self, plan: Plan, *, by, now: dt.datetime) -> None:
        raise NotImplementedError

    def patients(self, ids) -> dict[str, Patient]:
        rows = Patient.objects.filter(site=self.site, source=self.source, external_id__in=ids)
        return {p.external_id: p for p in rows}

    def patient_ids(self, ids) -> dict[str, int]:
        """The pks of the site's patients with these external ids (no model built)."""
        rows = Patient.objects.filter(site=self.site, source=self.source, external_id__in=ids)
        return dict(rows.values_list("external_id", "pk"))

    def unknown_patient(self, plan: Plan, row, patient_id: str) -> None:
        reason = (
            f"patient {patient_id} is not a patient of this site: import the patients file first"
        )
        plan.problems.append(Problem(row, "patient_id", patient_id, reason))


# Patients with their contacts -------------------------------------------------------

_PATIENT_COLUMNS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "birth_date": "birth_date",
    "language": "language",
    "is_active": "active",
}
_CONTACT_COLUMNS = {
    "first_name": "contact_first_name",
    "last_name": "contact_last_name",
    "relationship": "relationship",
    "authority": "authority",
    "end_date": "end_date",
    "language": "contact_language",
    "resides_with_patient": "resides_with_patient",
    "position": "contact_position",
}
_POINTS = (("mobile", ContactPointKind.MOBILE), ("home_phone", ContactPointKind.HOME),
           ("email", ContactPointKind.EMAIL))  # fmt: skip


class PatientHandler(Handler):
    kind = FileKind.PATIENTS

    @staticmethod
    def batch_key(parsed: Parsed):
        return parsed.data.patient_id if parsed.data is not None else parsed.row

    def said(self, key: tuple) -> str:
        patient_id, position = key
        if position is None:
            return f"patient {patient_id}"
        return f"contact {position} of patient {patient_id}"

    def prepare(self, rows: list) -> Plan:
        plan = Plan(first_row=rows[0].row if rows else 0)
        patients = self.patients({r.patient_id for r in rows})
        stored = [p.pk for p in patients.values()]
        contacts = {
            (c.patient_id, c.position): c for c in Contact.objects.filter(patient_id__in=stored)
        }
        points = {(p.contact_id, p.kind): p for p in
                  ContactPoint.objects.filter(contact__patient_id__in=stored)}  # fmt: skip
        preferences = {
            (p.contact_id, p.category): p.value
            for p in ContactPreference.objects.filter(contact__patient_id__in=stored)
        }
        self.consents = _latest_consents(points.values())
        planned_patients: set[int] = set()
        for row in rows:
            self._row(row, plan, patients, contacts, points, preferences, planned_patients)
        return plan

    def _row(self, row, plan, patients, contacts, points, preferences, planned) -> None:
        cells = _cells_of(row)
        patient = patients.get(row.patient_id)
        created = patient is None
        if created:
            patient = patients[row.patient_id] = Patient(
                site=self.site, source=self.source, external_id=row.patient_id
            )
        changed = assign(patient, first_name=row.first_name, last_name=row.last_name,
                         birth_date=row.birth_date, language=row.language,
                         is_active=row.active)  # fmt: skip
        if (created or changed) and id(patient) not in planned:
            if not check(patient, row.row, _PATIENT_COLUMNS, cells, plan):
                return
            planned.add(id(patient))
            plan.steps.append(("patient", patient))
        if row.contact is not None:
            c_created, c_changed = self._contact(row, patient, plan, contacts, points, preferences)
            created, changed = created or c_created, changed or c_changed
        plan.count(created, changed)

    def _contact(self, row, patient, plan, contacts, points, preferences) -> tuple[bool, bool]:
        given = row.contact
        cells = _cells_of(row)
        contact = contacts.get((_ref(patient), given.position))
        created = contact is None
        if created:
            if given.relationship is None:
                reason = "relationship is missing: a new contact needs one (self, mother, …)"
                plan.problems.append(Problem(row.row, "relationship", "", reason))
                return True, False
            contact = Contact(patient=patient, position=given.position, language=patient.language)
            contacts[(_ref(patient), given.position)] = contact
        is_self = (given.relationship or contact.relationship) == Relationship.SELF
        if created and not is_self:
            named = {"contact_first_name": given.first_name, "contact_last_name": given.last_name}
            for column, value in named.items():
                if not value:
                    said = column.replace("contact_", "contact's ").replace("_", " ")
                    reason = f"{said} is missing: a new contact needs one"
                    plan.problems.append(Problem(row.row, column, "", reason))
            if not all(named.values()):
                return True, False
        changed = assign(
            contact,
            relationship=given.relationship,
            first_name=given.first_name or (patient.first_name if is_self and created else None),
            last_name=given.last_name or (patient.last_name if is_self and created else None),
            authority=given.authority,
            end_date=given.end_date,
            resides_with_patient=given.resides_with_patient,
            language=given.language,
        )
        if (created or changed) and check(contact, row.row, _CONTACT_COLUMNS, cells, plan):
            plan.steps.append(("contact", contact))
        for column, kind in _POINTS:
            value = getattr(given, column)
            if value is None:
                continue
            point = points.get((_ref(contact), kind))
            if point is None:
                point = points[(_ref(contact), kind)] = ContactPoint(contact=contact, kind=kind)
            elif point.value == value[0]:
                continue
            point.value, point.raw_value = value
            plan.steps.append(("point", point))
            changed = True
        for category, value in given.preferences:
            if contact.pk is None or preferences.get((contact.pk, category)) != value:
                plan.steps.append(("preference", contact, category, value))
                changed = True
        for channel, granted in given.consents:
            point = self._consenting_point(row.row, contact, channel, points, plan)
            if point is not None and (
                point.pk is None or self.consents.get((point.pk, channel, point.value)) != granted
            ):
                plan.steps.append(("consent", point, channel, granted, given))
                changed = True
        return created, changed

    def _consenting_point(self, row: int, contact, channel: str, points, plan: Plan):
        """The contact point a consent column is about: the mobile for SMS, the
        mobile (else the home phone) for calls, the email for email."""
        kinds = {"sms": [ContactPointKind.MOBILE], "email": [ContactPointKind.EMAIL],
                 "call": [ContactPointKind.MOBILE, ContactPointKind.HOME]}[channel]  # fmt: skip
        for kind in kinds:
            point = points.get((_ref(contact), kind))
            if point is not None:
                return point
        needs = {"sms": "a mobile phone", "call": "a mobile or home phone", "email": "an email"}
        reason = f"{channel} consent needs {needs[channel]} for the contact (in this row or stored)"
        plan.problems.append(Problem(row, f"{channel}_consent", "", reason))
        return None

    def write(self, plan: Plan, *, by, now: dt.datetime) -> None:
        steps = defaultdict(list)
        for step in plan.steps:
            steps[step[0]].append(step[1:])
        people_bulk.save_people(
            self.site,
            patients=[patient for patient, in steps["patient"]],
            contacts=[contact for contact, in steps["contact"]],
            points=[point for point, in steps["point"]],
            preferences=steps["preference"],
            by=by, source=self.source, now=now,
        )  # fmt: skip
        for point, channel, granted, given in steps["consent"]:
            self._consent(point, channel, granted, given, by=by, now=now)

    def _consent(self, point, channel: str, granted: bool, given, *, by, now) -> None:
        if given.consent_wording:
            version, wording = given.consent_wording_version or "", given.consent_wording
        else:
            version, wording = consent.current_wording(self.site)
        consent.record_consent(
            point, channel, consent.GRANT if granted else consent.REVOKE,
            source=ConsentSource.IMPORT, wording=wording, wording_version=version,
            by=by, system=self.source, now=now,
        )  # fmt: skip


def _latest_consents(points) -> dict[tuple[int, str, str], bool]:
    """Whether each stored point's newest consent record for a channel and value
    grants it."""
    latest: dict[tuple[int, str, str], bool] = {}
    rows = ConsentRecord.objects.filter(contact_point__in=[p for p in points if p.pk])
    for point_id, channel, action, address in rows.order_by("recorded_at", "id").values_list(
        "contact_point_id", "channel", "action", "address"
    ):
        latest[(point_id, channel, address)] = action == ConsentRecord.Action.GRANT
    return latest


def _ref(obj):
    """A record's key in the batch's maps: its pk, or itself while new."""
    return obj.pk if obj.pk is not None else ("new", id(obj))


def _cells_of(row) -> dict[str, str]:
    """The row's values by column, as text, for the problems' value."""
    cells = {k: "" if v is None else str(v) for k, v in row._asdict().items() if k != "contact"}
    contact = getattr(row, "contact", None)
    if contact is not None:
        cells.update({
            "contact_position": str(contact.position),
            "relationship": contact.relationship or "",
            "contact_first_name": contact.first_name or "",
            "contact_last_name": contact.last_name or "",
        })  # fmt: skip
    return cells


# Appointments -----------------------------------------------------------------------


class AppointmentHandler(Handler):
    kind = FileKind.APPOINTMENTS

    def said(self, key: tuple) -> str:
        return f"appointment {key[0]}"

    def prepare(self, rows: list) -> Plan:
        plan = Plan(first_row=rows[0].row if rows else 0)
        patients = self.patient_ids({r.patient_id for r in rows})
        stored = {
            a.external_id: a
            for a in Appointment.objects.filter(
                site=self.site, source=self.source, external_id__in=[r.appointment_id for r in rows]
            )
        }
        for row in rows:
            patient_id = patients.get(row.patient_id)
            if patient_id is None:
                self.unknown_patient(plan, row.row, row.patient_id)
                continue
            appointment = stored.get(row.appointment_id)
            created = appointment is None
            if created:
                appointment = Appointment(site=self.site, source=self.source,
                                          external_id=row.appointment_id)  # fmt: skip
            changed = assign(
                appointment, patient_id=patient_id, starts_at=row.starts_at,
                duration_minutes=row.duration_minutes, appointment_type=row.appointment_type,
                provider_code=row.provider_code, provider_name=row.provider_name,
                location_code=row.location_code, location_name=row.location_name,
                status=row.status,
            )  # fmt: skip
            plan.count(created, changed)
            if created or changed:  # the row's cells were checked as the fields require
                plan.steps.append(appointment)
        return plan

    def write(self, plan: Plan, *, by, now: dt.datetime) -> None:
        appointment_actions.save_appointments(plan.steps, by=by, source=self.source, now=now)


# Prescriptions and fills ------------------------------------------------------------

_RX_COLUMNS = {"rx_number": "rx_number", "drug_name": "drug_name", "ndc": "ndc",
               "is_maintenance": "maintenance", "dea_schedule": "dea_schedule",
               "prescriber_name": "prescriber_name", "refills_authorized": "refills_authorized",
               "refills_remaining": "refills_remaining", "days_supply": "days_supply",
               "status": "status", "written_on": "written_on"}  # fmt: skip


class PrescriptionHandler(Handler):
    kind = FileKind.PRESCRIPTIONS

    def said(self, key: tuple) -> str:
        return f"prescription {key[0]}"

    def prepare(self, rows: list) -> Plan:
        plan = Plan(first_row=rows[0].row if rows else 0)
        patients = self.patient_ids({r.patient_id for r in rows})
        stored = {
            p.rx_number: p
            for p in Prescription.objects.filter(
                site=self.site, source=self.source, rx_number__in=[r.rx_number for r in rows]
            )
        }
        for row in rows:
            patient_id = patients.get(row.patient_id)
            if patient_id is None:
                self.unknown_patient(plan, row.row, row.patient_id)
                continue
            rx = stored.get(row.rx_number)
            created = rx is None
            if created:
                rx = Prescription(site=self.site, source=self.source, rx_number=row.rx_number)
            changed = assign(
                rx, patient_id=patient_id, drug_name=row.drug_name, ndc=row.ndc,
                is_maintenance=row.maintenance, dea_schedule=row.dea_schedule,
                prescriber_name=row.prescriber_name, refills_authorized=row.refills_authorized,
                refills_remaining=row.refills_remaining, days_supply=row.days_supply,
                status=row.status, written_on=row.written_on,
            )  # fmt: skip
            if rx.refills_remaining > rx.refills_authorized:
                reason = (f"refills remaining {rx.refills_remaining} is more than the "
                          f"{rx.refills_authorized} authorised")  # fmt: skip
                plan.problems.append(
                    Problem(row.row, "refills_remaining", str(rx.refills_remaining), reason)
                )
                continue
            plan.count(created, changed)
            if (created or changed) and check(rx, row.row, _RX_COLUMNS, _cells_of(row), plan):
                plan.steps.append(rx)
        return plan

    def write(self, plan: Plan, *, by, now: dt.datetime) -> None:
        for rx in plan.steps:
            pharmacy.save_prescription(rx, by=by, source=self.source, now=now)


_FILL_COLUMNS = {"fill_number": "fill_number", "filled_on": "filled_on",
                 "days_supply": "days_supply", "step": "step"}  # fmt: skip


class FillHandler(Handler):
    kind = FileKind.FILLS

    def said(self, key: tuple) -> str:
        return f"fill {key[1]} of prescription {key[0]}"

    def prepare(self, rows: list) -> Plan:
        plan = Plan(first_row=rows[0].row if rows else 0)
        prescriptions = {
            p.rx_number: p
            for p in Prescription.objects.filter(
                site=self.site, source=self.source, rx_number__in={r.rx_number for r in rows}
            )
        }
        fills = {
            (f.prescription_id, f.fill_number): f
            for f in Fill.objects.filter(prescription__in=prescriptions.values())
        }
        for row in rows:
            rx = prescriptions.get(row.rx_number)
            if rx is None:
                reason = (f"prescription {row.rx_number} is not a prescription of this site: "
                          "import the prescriptions file first")  # fmt: skip
                plan.problems.append(Problem(row.row, "rx_number", row.rx_number, reason))
                continue
            fill = fills.get((rx.pk, row.fill_number))
            created = fill is None
            if created:
                fill = Fill(prescription=rx, fill_number=row.fill_number,
                            days_supply=rx.days_supply)  # fmt: skip
            changed = assign(fill, filled_on=row.filled_on, days_supply=row.days_supply)
            step = row.step or (FillStep.RECEIVED.value if created else None)
            if step is not None and (created or step != fill.step):
                fill.step, changed = step, True
                setattr(fill, f"{step}_at", row.step_at or fill.reached_at(FillStep(step)))
            elif row.step_at is not None:
                changed = assign(fill, **{f"{fill.step}_at": row.step_at}) or changed
            plan.count(created, changed)
            if (created or changed) and check(fill, row.row, _FILL_COLUMNS, _cells_of(row), plan):
                plan.steps.append(fill)
        return plan

    def write(self, plan: Plan, *, by, now: dt.datetime) -> None:
        for fill in plan.steps:
            if fill.reached_at(FillStep(fill.step)) is None:
                setattr(fill, f"{fill.step}_at", now)
            pharmacy.save_fill(fill, by=by, source=self.source, now=now)


_HANDLERS = {
    h.kind: h for h in (PatientHandler, AppointmentHandler, PrescriptionHandler, FillHandler)
}


def for_kind(kind: FileKind) -> type[Handler]:
    return _HANDLERS[FileKind(kind)]
