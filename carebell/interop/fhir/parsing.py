"""FHIR JSON → plain data carebell can save. Pure: no database, no Django models.

Each `read_*` takes the bytes of a request body (or an already decoded object, for a
transaction entry) and returns a small dataclass, or raises FhirError: 400 for what
is not valid FHIR R4 (bad JSON, wrong types, wrong resourceType), 422 for valid FHIR
that carebell cannot take (a patient without a name, a booked appointment without
a start). The R4 examples validate with fhir.resources' R4B models, not its default
R5 ones (SOURCES.md of the shared vectors).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from fhir.resources.R4B import get_fhir_model_class

from carebell.interop.fhir import elements as el
from carebell.interop.fhir.elements import Reference, Telecom
from carebell.interop.fhir.outcomes import FhirError, invalid, unprocessable

#: The resource types this door takes in.
WRITABLE = (
    "Patient",
    "RelatedPerson",
    "Appointment",
    "MedicationRequest",
    "MedicationDispense",
)
#: Nested deeper than this, a body is refused before validation (a bomb, not a resource).
MAX_DEPTH = 40


@dataclass(frozen=True, slots=True)
class PersonIn:
    """A contact of a patient: a Patient.contact entry or a RelatedPerson."""

    first_name: str
    last_name: str
    relationship: str
    telecom: Telecom
    patient: Reference | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class PatientIn:
    identifiers: tuple[tuple[str, str], ...]
    first_name: str
    last_name: str
    birth_date: dt.date | None
    active: bool
    language: str
    telecom: Telecom
    contacts: tuple[PersonIn, ...] = ()


@dataclass(frozen=True, slots=True)
class AppointmentIn:
    identifiers: tuple[tuple[str, str], ...]
    status: str
    patient: Reference
    starts_at: dt.datetime | None
    duration_minutes: int
    appointment_type: str = ""
    provider_code: str = ""
    provider_name: str = ""
    location_code: str = ""
    location_name: str = ""

    @property
    def is_held(self) -> bool:
        """Proposed, pending or waitlisted: not yet an appointment carebell reminds of."""
        return self.status in HELD_STATUSES


@dataclass(frozen=True, slots=True)
class PrescriptionIn:
    identifiers: tuple[tuple[str, str], ...]
    status: str
    patient: Reference
    drug_name: str
    ndc: str
    prescriber_name: str
    refills_authorized: int
    days_supply: int | None
    written_on: dt.date | None


@dataclass(frozen=True, slots=True)
class DispenseIn:
    identifiers: tuple[tuple[str, str], ...]
    status: str
    patient: Reference
    prescription: Reference
    days_supply: int | None
    prepared_at: dt.datetime | None
    handed_over_at: dt.datetime | None


@dataclass(slots=True)
class Parsed:
    """A validated resource and what carebell takes from it."""

    resource_type: str
    data: object
    model: object = field(repr=False, default=None)


HELD_STATUSES = frozenset({"proposed", "pending", "waitlist"})
#: The R4 status codes of each type (fhir.resources does not check code bindings).
STATUSES = {
    "Appointment": frozenset({
        "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
        "entered-in-error", "checked-in", "waitlist"}),
    "MedicationRequest": frozenset({
        "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
        "unknown"}),
    "MedicationDispense": frozenset({
        "preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error",
        "stopped", "declined", "unknown"}),
}  # fmt: skip


# Decoding and validating ----------------------------------------------------------------


def decode(body: bytes | str) -> dict:
    """The JSON object of a request body, or a 400."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise invalid("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise invalid("The body must be a JSON object (a FHIR resource).")
    return data


def validate(data: object, expected: str | None = None):
    """`data` as a fhir.resources R4B model of its resourceType (which must be
    `expected` when given), or a 400 naming what is wrong."""
    if not isinstance(data, dict):
        raise invalid("A resource must be a JSON object.")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise invalid("The resource has no resourceType.", "resourceType")
    if expected is not None and resource_type != expected:
        raise invalid(
            f"Expected a {expected} resource, not {resource_type[:40]!r}.", "resourceType"
        )
    if _depth(data) > MAX_DEPTH:
        raise invalid("The resource is nested too deeply.")
    try:
        model_class = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError, TypeError):
        raise invalid(f"{resource_type[:40]!r} is not a FHIR R4 resource type.") from None
    try:
        return model_class.model_validate(data)
    except Exception as error:  # pydantic's ValidationError and the validators' own errors
        raise invalid(_describe(error)) from None


def _describe(error: Exception) -> str:
    """The first problems of a validation error, by element and without the values
    (they may be patient data, and responses end up in clients' logs)."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return "The resource is not valid FHIR R4."
    try:
        found = errors(include_input=False, include_url=False)
    except Exception:  # a describing failure must not hide the refusal
        return "The resource is not valid FHIR R4."
    parts = []
    for item in found[:3]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "resource"
        message = str(item.get("msg", "invalid")).splitlines()[0][:160]
        parts.append(f"{where}: {message}")
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return "Not valid FHIR R4 — " + "; ".join(parts) + more


def _depth(value: object, level: int = 0) -> int:
    """How deeply `value` nests; a NUL character anywhere (which no database text
    column takes) is refused here too."""
    stack = [(value, level)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            stack.extend((k, depth + 1) for k in item)
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str) and "\x00" in item:
            raise invalid("Text may not hold NUL characters.")
    return deepest


def read(data: dict | bytes | str, expected: str | None = None) -> Parsed:
    """Decode (for bytes), validate and map one resource of a writable type."""
    if isinstance(data, bytes | str):
        data = decode(data)
    model = validate(data, expected)
    resource_type = model.get_resource_type()
    reader = _READERS.get(resource_type)
    if reader is None:
        raise FhirError(405, f"carebell does not take {resource_type} resources.")
    codes = STATUSES.get(resource_type)
    if codes is not None and model.status not in codes:
        raise invalid(f"{resource_type}.status must be one of {', '.join(sorted(codes))}.",
                      f"{resource_type}.status")  # fmt: skip
    return Parsed(resource_type, reader(model), model)


# Per resource type ------------------------------------------------------------------------


def read_patient(model) -> PatientIn:
    first, last = el.names(model.name, "Patient.name")
    if not first or not last:
        raise unprocessable("A patient needs a given and a family name.", "Patient.name")
    contacts = tuple(_patient_contact(c, i) for i, c in enumerate(model.contact or ()))
    return PatientIn(
        identifiers=el.identifiers(model.identifier),
        first_name=first,
        last_name=last,
        birth_date=el.date(model.birthDate),
        active=model.active is not False,
        language=el.language(model.communication),
        telecom=el.telecom(model.telecom),
        contacts=tuple(c for c in contacts if c is not None),
    )


def _patient_contact(contact, index: int) -> PersonIn | None:
    first, last = el.names([contact.name] if contact.name else [], f"Patient.contact[{index}]")
    if not first and not last:
        return None  # an organization as contact, or no name: nobody carebell can address
    return PersonIn(
        first_name=first or last,
        last_name=last or first,
        relationship=el.relationship(contact.relationship),
        telecom=el.telecom(contact.telecom),
    )


def read_related_person(model) -> PersonIn:
    first, last = el.names(model.name, "RelatedPerson.name")
    if not first and not last:
        raise unprocessable("A related person needs a name.", "RelatedPerson.name")
    return PersonIn(
        first_name=first or last,
        last_name=last or first,
        relationship=el.relationship(model.relationship),
        telecom=el.telecom(model.telecom),
        patient=el.reference(model.patient, "RelatedPerson.patient", "Patient"),
        identifiers=el.identifiers(model.identifier),
        active=model.active is not False,
    )


def read_appointment(model) -> AppointmentIn:
    patient = provider = location = None
    for participant in model.participant or ():
        actor = participant.actor
        kind = el.reference_type(actor)
        if kind == "Patient" and patient is None:
            patient = actor
        elif kind in ("Practitioner", "PractitionerRole") and provider is None:
            provider = actor
        elif kind == "Location" and location is None:
            location = actor
    if patient is None:
        raise unprocessable(
            "An appointment needs a Patient participant.", "Appointment.participant"
        )
    status = model.status
    starts_at = el.instant(model.start)
    if starts_at is None and status not in HELD_STATUSES:
        raise unprocessable(f"A {status} appointment needs a start.", "Appointment.start")
    return AppointmentIn(
        identifiers=el.identifiers(model.identifier),
        status=status,
        patient=el.reference(patient, "Appointment.participant.actor", "Patient"),
        starts_at=starts_at,
        duration_minutes=el.minutes(model),
        appointment_type=el.code(model.appointmentType)[:64],
        provider_code=el.reference_id(provider)[:64],
        provider_name=el.display(provider)[:200],
        location_code=el.reference_id(location)[:64],
        location_name=el.display(location)[:200],
    )


def read_medication_request(model) -> PrescriptionIn:
    drug_name, ndc = el.medication(model)
    dispense = model.dispenseRequest
    refills = dispense.numberOfRepeatsAllowed if dispense is not None else None
    supply = dispense.expectedSupplyDuration if dispense is not None else None
    return PrescriptionIn(
        identifiers=el.identifiers(model.identifier),
        status=model.status,
        patient=el.reference(model.subject, "MedicationRequest.subject", "Patient"),
        drug_name=drug_name,
        ndc=ndc,
        prescriber_name=el.display(model.requester)[:200],
        refills_authorized=min(max(int(refills or 0), 0), 99),
        days_supply=el.days(supply, "MedicationRequest.dispenseRequest.expectedSupplyDuration"),
        written_on=el.date(model.authoredOn),
    )


def read_medication_dispense(model) -> DispenseIn:
    prescriptions = model.authorizingPrescription or ()
    if not prescriptions:
        raise unprocessable(
            "A dispense needs its authorizingPrescription (a MedicationRequest).",
            "MedicationDispense.authorizingPrescription",
        )
    return DispenseIn(
        identifiers=el.identifiers(model.identifier),
        status=model.status,
        patient=el.reference(model.subject, "MedicationDispense.subject", "Patient"),
        prescription=el.reference(
            prescriptions[0], "MedicationDispense.authorizingPrescription", "MedicationRequest"
        ),
        days_supply=el.days(model.daysSupply, "MedicationDispense.daysSupply"),
        prepared_at=el.instant(model.whenPrepared),
        handed_over_at=el.instant(model.whenHandedOver),
    )


_READERS = {
    "Patient": read_patient,
    "RelatedPerson": read_related_person,
    "Appointment": read_appointment,
    "MedicationRequest": read_medication_request,
    "MedicationDispense": read_medication_dispense,
}
