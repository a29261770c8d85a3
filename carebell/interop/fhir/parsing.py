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
from decimal import Decimal

from fhir.resources.R4B import get_fhir_model_class

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
class Reference:
    """A reference to another resource: "Type/id", or a transaction's "urn:uuid:…"."""

    resource_type: str
    fhir_id: str
    urn: str = ""


@dataclass(frozen=True, slots=True)
class Telecom:
    mobile: str = ""
    home: str = ""
    email: str = ""


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
#: Instants and dates outside these years are typing mistakes, not appointments.
YEARS = range(1850, 2200)
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"


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
    first, last = _names(model.name, "Patient.name")
    if not first or not last:
        raise unprocessable("A patient needs a given and a family name.", "Patient.name")
    contacts = tuple(_patient_contact(c, i) for i, c in enumerate(model.contact or ()))
    return PatientIn(
        identifiers=_identifiers(model.identifier),
        first_name=first,
        last_name=last,
        birth_date=_date(model.birthDate),
        active=model.active is not False,
        language=_language(model.communication),
        telecom=_telecom(model.telecom),
        contacts=tuple(c for c in contacts if c is not None),
    )


def _patient_contact(contact, index: int) -> PersonIn | None:
    first, last = _names([contact.name] if contact.name else [], f"Patient.contact[{index}]")
    if not first and not last:
        return None  # an organization as contact, or no name: nobody carebell can address
    return PersonIn(
        first_name=first or last,
        last_name=last or first,
        relationship=relationship(contact.relationship),
        telecom=_telecom(contact.telecom),
    )


def read_related_person(model) -> PersonIn:
    first, last = _names(model.name, "RelatedPerson.name")
    if not first and not last:
        raise unprocessable("A related person needs a name.", "RelatedPerson.name")
    return PersonIn(
        first_name=first or last,
        last_name=last or first,
        relationship=relationship(model.relationship),
        telecom=_telecom(model.telecom),
        patient=_reference(model.patient, "RelatedPerson.patient", "Patient"),
        identifiers=_identifiers(model.identifier),
        active=model.active is not False,
    )


def read_appointment(model) -> AppointmentIn:
    patient = provider = location = None
    for participant in model.participant or ():
        actor = participant.actor
        kind = _reference_type(actor)
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
    starts_at = _instant(model.start)
    if starts_at is None and status not in HELD_STATUSES:
        raise unprocessable(f"A {status} appointment needs a start.", "Appointment.start")
    return AppointmentIn(
        identifiers=_identifiers(model.identifier),
        status=status,
        patient=_reference(patient, "Appointment.participant.actor", "Patient"),
        starts_at=starts_at,
        duration_minutes=_minutes(model),
        appointment_type=_code(model.appointmentType)[:64],
        provider_code=_reference_id(provider)[:64],
        provider_name=_display(provider)[:200],
        location_code=_reference_id(location)[:64],
        location_name=_display(location)[:200],
    )


def read_medication_request(model) -> PrescriptionIn:
    drug_name, ndc = _medication(model)
    dispense = model.dispenseRequest
    refills = dispense.numberOfRepeatsAllowed if dispense is not None else None
    supply = dispense.expectedSupplyDuration if dispense is not None else None
    return PrescriptionIn(
        identifiers=_identifiers(model.identifier),
        status=model.status,
        patient=_reference(model.subject, "MedicationRequest.subject", "Patient"),
        drug_name=drug_name,
        ndc=ndc,
        prescriber_name=_display(model.requester)[:200],
        refills_authorized=min(max(int(refills or 0), 0), 99),
        days_supply=_days(supply, "MedicationRequest.dispenseRequest.expectedSupplyDuration"),
        written_on=_date(model.authoredOn),
    )


def read_medication_dispense(model) -> DispenseIn:
    prescriptions = model.authorizingPrescription or ()
    if not prescriptions:
        raise unprocessable(
            "A dispense needs its authorizingPrescription (a MedicationRequest).",
            "MedicationDispense.authorizingPrescription",
        )
    return DispenseIn(
        identifiers=_identifiers(model.identifier),
        status=model.status,
        patient=_reference(model.subject, "MedicationDispense.subject", "Patient"),
        prescription=_reference(
            prescriptions[0], "MedicationDispense.authorizingPrescription", "MedicationRequest"
        ),
        days_supply=_days(model.daysSupply, "MedicationDispense.daysSupply"),
        prepared_at=_instant(model.whenPrepared),
        handed_over_at=_instant(model.whenHandedOver),
    )


_READERS = {
    "Patient": read_patient,
    "RelatedPerson": read_related_person,
    "Appointment": read_appointment,
    "MedicationRequest": read_medication_request,
    "MedicationDispense": read_medication_dispense,
}


# Elements -----------------------------------------------------------------------------------


def _identifiers(identifiers) -> tuple[tuple[str, str], ...]:
    """(system, value) pairs, each once, in order (the f201 example lists one twice)."""
    seen: dict[tuple[str, str], None] = {}
    for identifier in identifiers or ():
        value = (identifier.value or "").strip()
        if value:
            seen[((identifier.system or "").strip()[:254], value[:254])] = None
    return tuple(seen)


def _names(names, where: str) -> tuple[str, str]:
    """Given and family name of the official name, else the first one with either."""
    names = [n for n in names or () if n is not None]
    preferred = [n for n in names if n.use == "official"] + [
        n for n in names if n.use not in ("official", "old", "maiden")
    ] + [n for n in names if n.use in ("old", "maiden")]  # fmt: skip
    for name in preferred:
        given = " ".join(g.strip() for g in name.given or () if g and g.strip())
        family = (name.family or "").strip()
        if not given and not family and name.text:
            given, _, family = name.text.strip().rpartition(" ")
        if given or family:
            return given[:100], family[:100]
    return "", ""


#: Relationship codes (v3 RoleCode, SNOMED CT, v2-0063) → carebell's relationships.
_RELATIONSHIPS = {
    "MTH": "mother", "NMTH": "mother", "STPMTH": "mother", "ADOPTMTH": "mother",
    "GESTM": "mother", "FMTH": "mother", "72705000": "mother",
    "FTH": "father", "NFTH": "father", "STPFTH": "father", "ADOPTF": "father",
    "FFTH": "father", "66839005": "father",
    "GUARD": "guardian", "GRD": "guardian", "58626002": "guardian",
    "CAREGIVER": "caregiver", "ONESELF": "self", "SELF": "self", "SEL": "self",
}  # fmt: skip


def relationship(concepts) -> str:
    """carebell's relationship for a list of CodeableConcepts: the first code it
    knows wins; a next of kin or emergency contact is "other"."""
    for concept in concepts or ():
        for coding in concept.coding or ():
            known = _RELATIONSHIPS.get((coding.code or "").upper())
            if known:
                return known
    for concept in concepts or ():
        text = (concept.text or "").strip().lower()
        for word in ("mother", "father", "guardian", "caregiver"):
            if word in text:
                return word
    return "other"


def _telecom(points) -> Telecom:
    """The best mobile, home phone and email: current entries only (no `old` use,
    no ended period), by rank. Work and unqualified phones count as home phones
    (carebell keeps a mobile and a landline per contact); an "sms" system is a mobile."""
    found: dict[str, tuple[int, str]] = {}
    for order, point in enumerate(points or ()):
        value = (point.value or "").strip()
        if not value or point.use == "old" or (point.period and point.period.end):
            continue
        if point.system == "email":
            kind = "email"
        elif point.system == "sms" or (point.system == "phone" and point.use == "mobile"):
            kind = "mobile"
        elif point.system == "phone":
            kind = "home"
        else:
            continue
        rank = (point.rank or 10_000, order)
        if kind not in found or rank < found[kind][0]:
            found[kind] = (rank, value[:254])
    return Telecom(**{kind: value for kind, (_, value) in found.items()})


def _language(communications) -> str:
    """ "en" or "es" (the languages carebell writes in), from the preferred language."""
    ordered = sorted(communications or (), key=lambda c: c.preferred is not True)
    for communication in ordered:
        language = communication.language
        for coding in (language.coding if language is not None else None) or ():
            code = (coding.code or "").lower()[:2]
            if code in ("en", "es"):
                return code
    return "en"


def _reference(reference, where: str, expected: str) -> Reference:
    if reference is None or not reference.reference:
        raise unprocessable(f"{where} must reference a {expected}.", where)
    text = reference.reference.strip()
    if text.startswith("urn:uuid:") or text.startswith("urn:oid:"):
        return Reference(expected, "", urn=text)
    if text.startswith("#"):
        raise unprocessable(f"{where}: contained resources are not taken.", where)
    parts = text.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or parts[-2] != expected or not parts[-1]:
        raise unprocessable(f"{where} must reference a {expected}.", where)
    return Reference(expected, parts[-1][:64])


def _reference_type(reference) -> str:
    if reference is None:
        return ""
    if (reference.reference or "").startswith("urn:"):
        return reference.type or ""  # a transaction sets it from the entry referenced
    text = (reference.reference or "").split("/")
    if len(text) >= 2:
        return text[-2]
    return reference.type or ""


def _reference_id(reference) -> str:
    if reference is None or not reference.reference:
        return ""
    return reference.reference.rstrip("/").split("/")[-1]


def _display(reference) -> str:
    return (reference.display or "").strip() if reference is not None else ""


def _code(concept) -> str:
    if concept is None:
        return ""
    for coding in concept.coding or ():
        if coding.code:
            return coding.code
    return (concept.text or "").strip()


def _medication(model) -> tuple[str, str]:
    concept = model.medicationCodeableConcept
    if concept is not None:
        ndc = next((c.code for c in concept.coding or () if c.system == NDC_SYSTEM and c.code), "")
        names = [concept.text] + [c.display for c in concept.coding or ()]
        name = next((n.strip() for n in names if n and n.strip()), "") or _code(concept)
    else:
        name, ndc = _display(model.medicationReference), ""
    if not name:
        raise unprocessable("The medication needs a name (text or a coding's display).")
    return name[:200], (ndc or "")[:16]


_DAYS_PER_UNIT = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "mo": 30, "month": 30}


def _days(quantity, where: str) -> int | None:
    """A Duration/Quantity in whole days (1–999), or None when absent."""
    if quantity is None or quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "d").lower()
    per = _DAYS_PER_UNIT.get(unit)
    if per is None:
        raise unprocessable(f"{where}: a supply is counted in days, weeks or months.", where)
    days = Decimal(quantity.value) * per
    if not days.is_finite() or days < 1 or days > 999:
        raise unprocessable(f"{where}: a supply of 1 to 999 days.", where)
    return int(days)


def _minutes(model) -> int:
    minutes = model.minutesDuration
    if minutes is None and model.start is not None and model.end is not None:
        minutes = int((_instant(model.end) - _instant(model.start)).total_seconds() // 60)
    if minutes is None:
        return 15
    if minutes < 1 or minutes > 1440:
        raise unprocessable(
            "An appointment lasts 1 to 1440 minutes.", "Appointment.minutesDuration"
        )
    return int(minutes)


def _date(value) -> dt.date | None:
    """A full date; a partial one (a year, a month) carebell cannot use is left out."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        return None
    return _in_years(value)


def _instant(value) -> dt.datetime | None:
    """An aware instant; a date alone is its midnight UTC."""
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, dt.date):
        value = dt.datetime.combine(value, dt.time(0), tzinfo=dt.UTC)
    else:
        return None
    return _in_years(value)


def _in_years(value):
    if value.year not in YEARS:
        raise unprocessable(f"The year {value.year} is outside {YEARS.start}–{YEARS.stop - 1}.")
    return value
