"""The pieces of FHIR resources carebell reads: names, telecom, references, codes,
quantities and times (fhir.resources R4B model objects in, plain values out). Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from carebell.interop.fhir.outcomes import unprocessable

NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
#: Instants and dates outside these years are typing mistakes, not appointments.
YEARS = range(1850, 2200)


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


def identifiers(identifiers) -> tuple[tuple[str, str], ...]:
    """(system, value) pairs, each once, in order (the f201 example lists one twice)."""
    seen: dict[tuple[str, str], None] = {}
    for identifier in identifiers or ():
        value = (identifier.value or "").strip()
        if value:
            seen[((identifier.system or "").strip()[:254], value[:254])] = None
    return tuple(seen)


def names(names, where: str) -> tuple[str, str]:
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


def telecom(points) -> Telecom:
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


def language(communications) -> str:
    """ "en" or "es" (the languages carebell writes in), from the preferred language."""
    ordered = sorted(communications or (), key=lambda c: c.preferred is not True)
    for communication in ordered:
        language = communication.language
        for coding in (language.coding if language is not None else None) or ():
            code = (coding.code or "").lower()[:2]
            if code in ("en", "es"):
                return code
    return "en"


def reference(reference, where: str, expected: str) -> Reference:
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


def reference_type(reference) -> str:
    if reference is None:
        return ""
    if (reference.reference or "").startswith("urn:"):
        return reference.type or ""  # a transaction sets it from the entry referenced
    text = (reference.reference or "").split("/")
    if len(text) >= 2:
        return text[-2]
    return reference.type or ""


def reference_id(reference) -> str:
    if reference is None or not reference.reference:
        return ""
    return reference.reference.rstrip("/").split("/")[-1]


def display(reference) -> str:
    return (reference.display or "").strip() if reference is not None else ""


def code(concept) -> str:
    if concept is None:
        return ""
    for coding in concept.coding or ():
        if coding.code:
            return coding.code
    return (concept.text or "").strip()


def medication(model) -> tuple[str, str]:
    concept = model.medicationCodeableConcept
    if concept is not None:
        ndc = next((c.code for c in concept.coding or () if c.system == NDC_SYSTEM and c.code), "")
        names = [concept.text] + [c.display for c in concept.coding or ()]
        name = next((n.strip() for n in names if n and n.strip()), "") or code(concept)
    else:
        name, ndc = display(model.medicationReference), ""
    if not name:
        raise unprocessable("The medication needs a name (text or a coding's display).")
    return name[:200], (ndc or "")[:16]


_DAYS_PER_UNIT = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "mo": 30, "month": 30}


def days(quantity, where: str) -> int | None:
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


def minutes(model) -> int:
    minutes = model.minutesDuration
    if minutes is None and model.start is not None and model.end is not None:
        minutes = int((instant(model.end) - instant(model.start)).total_seconds() // 60)
    if minutes is None:
        return 15
    if minutes < 1 or minutes > 1440:
        raise unprocessable(
            "An appointment lasts 1 to 1440 minutes.", "Appointment.minutesDuration"
        )
    return int(minutes)


def date(value) -> dt.date | None:
    """A full date; a partial one (a year, a month) carebell cannot use is left out."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        return None
    return _in_years(value)


def instant(value) -> dt.datetime | None:
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
