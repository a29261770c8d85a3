"""Where each datum lives in a sender's feed, and reading it: pure, no Django.

Real feeds disagree (see ../shared/vectors/hl7/SOURCES.md): the start of an
appointment is in TQ1-7 in v2.5+ feeds, in SCH-11.4 in older ones; a Barts feed puts
every phone and the email in PID-13 with `MOBILE`/`HOME`/`EMAIL` as the use code. A
`Mapping` lists, per datum, the fields to try in order; its defaults read every sample
in the vectors right, and a sender's row (`Hl7Sender.mapping`, a JSON object with the
same keys) overrides any of them.

The trigger event decides what happens to an appointment (S15 cancels, S26 is a
no-show, whatever SCH-25 says); the filler status is read only to be shown.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, fields, replace

from carebell.core.vocab import AppointmentStatus, ContactPointKind, FillStep, Relationship
from carebell.interop.hl7.parse import Hl7Error, Message, component, parse_timestamp, repetitions

_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\.(\d{1,2}))?$")

#: Trigger events carebell acts on, and the appointment status each one means.
SIU_STATUS = {
    "S12": AppointmentStatus.BOOKED,
    "S13": AppointmentStatus.BOOKED,
    "S14": AppointmentStatus.BOOKED,
    "S15": AppointmentStatus.CANCELLED,
    "S17": AppointmentStatus.DELETED,
    "S26": AppointmentStatus.NO_SHOW,
}
ADT_EVENTS = ("A04", "A08", "A28", "A31")
SUPPORTED = {"SIU": tuple(SIU_STATUS), "ADT": ADT_EVENTS, "RDE": ("O11",), "RDS": ("O13",)}

_UNITS = {"S": 1 / 60, "SEC": 1 / 60, "SECONDS": 1 / 60, "M": 1, "MIN": 1, "MINS": 1,
          "MINUTE": 1, "MINUTES": 1, "H": 60, "HR": 60, "HOUR": 60, "HOURS": 60}  # fmt: skip


@dataclass(frozen=True)
class Mapping:
    """Fields tried in order for each datum ("SEG-field" or "SEG-field.component")."""

    start: tuple[str, ...] = ("TQ1-7", "AIS-4", "AIL-6", "AIP-6", "AIG-8", "SCH-11.4")
    end: tuple[str, ...] = ("TQ1-8", "SCH-11.5")
    #: (amount, unit) pairs; AI* durations first: SCH-9/10 contradict them in 2.8 feeds.
    duration: tuple[tuple[str, str], ...] = (
        ("AIS-7", "AIS-8"), ("AIL-9", "AIL-10"), ("AIP-9", "AIP-10"), ("AIG-11", "AIG-12"),
    )  # fmt: skip
    fallback_duration: tuple[tuple[str, str], ...] = (("SCH-9", "SCH-10"),)
    location: tuple[str, ...] = ("AIL-3", "PV1-3")
    provider: tuple[str, ...] = ("AIP-3", "PV1-7", "AIG-3")
    appointment_type: tuple[str, ...] = ("AIS-3.2", "SCH-7.2", "SCH-7")
    appointment_id: tuple[str, ...] = ("SCH-2", "SCH-1")
    status: tuple[str, ...] = ("SCH-25",)
    phones: tuple[str, ...] = ("PID-13", "PID-40", "PID-14")
    #: XTN use (XTN-2) and equipment (XTN-3) codes, standard and as real feeds write them.
    mobile_codes: tuple[str, ...] = ("CP", "MOBILE", "CELL", "MOB", "ORN")
    home_codes: tuple[str, ...] = ("PRN", "PH", "HOME", "H", "HP", "VHN")
    email_codes: tuple[str, ...] = ("NET", "INTERNET", "X.400", "EMAIL", "E-MAIL")
    ignored_codes: tuple[str, ...] = ("FX", "BP", "TDD", "TTY", "WPN", "BUSINESS", "BPN", "EMR")
    #: NK1-3 codes (table 0063) → carebell's relationship; anything else is "other".
    relationships: tuple[tuple[str, str], ...] = (
        ("MTH", "mother"), ("MOTHER", "mother"), ("FTH", "father"), ("FATHER", "father"),
        ("GRD", "guardian"), ("GUARDIAN", "guardian"), ("CGV", "caregiver"),
        ("CAREGIVER", "caregiver"), ("SEL", "self"), ("SELF", "self"),
    )  # fmt: skip
    #: The step a fill reaches when its dispense (RDS^O13) arrives.
    fill_step: str = "ready"
    #: A zone for times written without an offset; "" = the site's.
    time_zone: str = ""

    @classmethod
    def from_dict(cls, data: dict | None) -> Mapping:
        """The defaults with a sender's overrides; an unknown key or a malformed path
        raises ValueError naming it."""
        if not data:
            return cls()
        known = {f.name: f for f in fields(cls)}
        changes = {}
        for key, raw in data.items():
            if key not in known:
                raise ValueError(f"unknown mapping key {key!r}")
            if isinstance(getattr(cls(), key), str):
                changes[key] = str(raw)
            else:
                changes[key] = tuple(tuple(v) if isinstance(v, list) else v for v in raw)
        mapping = replace(cls(), **changes)
        paths = (*mapping.start, *mapping.end, *mapping.location, *mapping.provider,
                 *mapping.appointment_type, *mapping.appointment_id, *mapping.phones)  # fmt: skip
        for path in paths:
            _parse_path(path)
        FillStep(mapping.fill_step)
        return mapping


# Plain data -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    kind: ContactPointKind
    raw: str  # as received: "(608)271-9000", "testrenal@test.co"


@dataclass(frozen=True, slots=True)
class Person:
    first_name: str
    last_name: str
    relationship: Relationship = Relationship.SELF
    points: tuple[Point, ...] = ()


@dataclass(frozen=True, slots=True)
class PatientData:
    external_id: str
    first_name: str
    last_name: str
    birth_date: dt.date | None
    points: tuple[Point, ...] = ()
    next_of_kin: tuple[Person, ...] = ()


@dataclass(frozen=True, slots=True)
class AppointmentData:
    external_id: str
    status: AppointmentStatus
    starts_at: dt.datetime | None
    duration_minutes: int | None
    location_code: str = ""
    location_name: str = ""
    provider_code: str = ""
    provider_name: str = ""
    appointment_type: str = ""
    filler_status: str = ""


@dataclass(frozen=True, slots=True)
class PrescriptionData:
    rx_number: str
    drug_name: str
    ndc: str = ""
    refills_authorized: int = 0
    refills_remaining: int | None = None
    prescriber_name: str = ""
    written_on: dt.date | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class FillData:
    fill_number: int
    filled_on: dt.date
    step: FillStep
    quantity: str = ""
    dispense_type: str = ""


@dataclass(frozen=True, slots=True)
class Content:
    """What one message says, in carebell's terms."""

    patient: PatientData
    appointment: AppointmentData | None = None
    prescription: PrescriptionData | None = None
    fill: FillData | None = None
    sent_at: dt.datetime | None = None
    demographics: bool = field(default=False)  # an ADT: names, phones and NK1 are news


def supported(message: Message) -> None:
    """Raise Hl7Error (AR) for a message type carebell does not take."""
    header = message.header
    events = SUPPORTED.get(header.message_code)
    if events is None or header.trigger not in events:
        code = "200" if events is None else "201"
        raise Hl7Error(
            f"{header.message_type[:20]} messages are not taken (SIU S12–S26, ADT "
            "A04/A08/A28/A31, RDE^O11, RDS^O13).",
            ack="AR",
            code=code,
            where="MSH-9",
        )


def read(message: Message, mapping: Mapping, zone: dt.tzinfo) -> Content:
    """The content of a supported message; Hl7Error (AE) names a missing field."""
    supported(message)
    code = message.header.message_code
    stamp = parse_timestamp(message.header.sent_at_text)
    sent_at = stamp.aware(zone) if stamp else None
    patient = read_patient(message, mapping)
    if code == "SIU":
        return Content(patient, appointment=read_appointment(message, mapping, zone),
                       sent_at=sent_at)  # fmt: skip
    if code == "ADT":
        return Content(patient, sent_at=sent_at, demographics=True)
    prescription = read_prescription(message)
    fill = read_fill(message, mapping) if code == "RDS" else None
    return Content(patient, prescription=prescription, fill=fill, sent_at=sent_at)


# Patients ---------------------------------------------------------------------------


def read_patient(message: Message, mapping: Mapping) -> PatientData:
    pid = message.first("PID")
    if pid is None:
        raise Hl7Error("The message has no PID segment.", code="100", where="PID")
    external_id = _patient_id(pid)
    family, given = component_at(pid, 5, 1, 1), component_at(pid, 5, 2)
    if not external_id:
        raise Hl7Error("PID-3 holds no patient identifier.", code="101", where="PID-3")
    if not (family and given):
        raise Hl7Error("PID-5 needs a family and a given name.", code="101", where="PID-5")
    birth = parse_timestamp(component_at(pid, 7, 1))
    points = read_points(message, mapping.phones, mapping)
    kin = tuple(_next_of_kin(nk1, mapping) for nk1 in message.all("NK1"))
    return PatientData(
        external_id=external_id[:64],
        first_name=given[:100],
        last_name=family[:100],
        birth_date=birth.local.date() if birth else None,
        points=points,
        next_of_kin=tuple(k for k in kin if k is not None),
    )


def _patient_id(pid: list) -> str:
    """PID-3's medical record number (type MR/MRN) if there is one, else its first
    identifier, else PID-2 (v2.3 feeds)."""
    reps = repetitions(pid, 3)
    for rep in reps:
        if component(rep, 5).upper() in ("MR", "MRN") and component(rep, 1):
            return component(rep, 1)
    for rep in reps:
        if component(rep, 1):
            return component(rep, 1)
    return component_at(pid, 2, 1)


def _next_of_kin(nk1: list, mapping: Mapping) -> Person | None:
    family, given = component_at(nk1, 2, 1, 1), component_at(nk1, 2, 2)
    if not (family and given):
        return None  # carebell cannot address a contact it has no name for
    code = component_at(nk1, 3, 1).upper() or component_at(nk1, 3, 2).upper()
    relationship = Relationship(dict(mapping.relationships).get(code, "other"))
    points = _points_of([repetitions(nk1, 5), repetitions(nk1, 6)], mapping)
    return Person(given[:100], family[:100], relationship, points)


def read_points(message: Message, paths: tuple[str, ...], mapping: Mapping) -> tuple[Point, ...]:
    groups = []
    for path in paths:
        segment_id, n, _ = _parse_path(path)
        groups.append(repetitions(message.first(segment_id), n))
    return _points_of(groups, mapping)


def _points_of(groups: list[list], mapping: Mapping) -> tuple[Point, ...]:
    """The first phone of each kind and the first email, in field and repetition
    order (a contact has one of each)."""
    found: dict[ContactPointKind, Point] = {}
    for reps in groups:
        for rep in reps:
            point = read_xtn(rep, mapping)
            if point is not None and point.kind not in found:
                found[point.kind] = point
    return tuple(found.values())


def read_xtn(rep: list, mapping: Mapping) -> Point | None:
    """One XTN as a phone or email, or None (a fax, a pager, a work line, a null).

    Email: XTN-4 when it holds an address (v2.3+), else XTN-1 with an @ (feeds that
    put it there with a use code `EMAIL`). Phone: XTN-1, else XTN-12 (unformatted),
    else country, area and local number (XTN-5/6/7); the kind comes from the
    equipment type (XTN-3) and the use code (XTN-2), a mobile code first: `PRN^CP` is a
    mobile, `BPN^PH` a work line (not kept)."""
    use, equipment = component(rep, 2).upper(), component(rep, 3).upper()
    codes = (equipment, use)
    first, email = component(rep, 1), component(rep, 4)
    if "@" in email:
        return Point(ContactPointKind.EMAIL, email[:254])
    if "@" in first:
        return Point(ContactPointKind.EMAIL, first[:254])
    if any(c in mapping.email_codes for c in codes if c):
        return None  # an email code with no address in it
    number = first or component(rep, 12)
    if not number and component(rep, 7):
        number = "".join(
            (f"+{component(rep, 5)} " if component(rep, 5) else "", component(rep, 6),
             component(rep, 7))
        )  # fmt: skip
    if not any(ch.isdigit() for ch in number):
        return None
    if any(c in mapping.mobile_codes for c in codes if c):
        return Point(ContactPointKind.MOBILE, number[:254])
    if any(c in mapping.ignored_codes for c in codes if c):
        return None  # a fax, a pager, a text telephone, a work line
    if not any(codes) or any(c in mapping.home_codes for c in codes if c):
        return Point(ContactPointKind.HOME, number[:254])
    return None


# Appointments -----------------------------------------------------------------------


def read_appointment(message: Message, mapping: Mapping, zone: dt.tzinfo) -> AppointmentData:
    external_id = first_value(message, mapping.appointment_id)
    if not external_id:
        raise Hl7Error("SCH-1 and SCH-2 hold no appointment id.", code="101", where="SCH-2")
    start = first_time(message, mapping.start)
    end = first_time(message, mapping.end)
    starts_at = start.aware(zone) if start else None
    if starts_at is None:
        raise Hl7Error(
            f"No start time in {', '.join(mapping.start)}.", code="101", where=mapping.start[0]
        )
    duration = _duration(message, mapping.duration)
    if duration is None and end is not None and end.aware(zone) > starts_at:
        duration = round((end.aware(zone) - starts_at).total_seconds() / 60)
    if duration is None:
        duration = _duration(message, mapping.fallback_duration)
    location_code, location_name = _location(message, mapping.location)
    provider_code, provider_name = _provider(message, mapping.provider)
    return AppointmentData(
        external_id=external_id[:64],
        status=SIU_STATUS[message.header.trigger],
        starts_at=starts_at,
        duration_minutes=min(duration, 32767) if duration and duration > 0 else None,
        location_code=location_code[:64],
        location_name=location_name[:200],
        provider_code=provider_code[:64],
        provider_name=provider_name[:200],
        appointment_type=first_value(message, mapping.appointment_type)[:64],
        filler_status=first_value(message, mapping.status)[:32],
    )


def _duration(message: Message, pairs) -> int | None:
    for amount_path, unit_path in pairs:
        amount = first_value(message, (amount_path,))
        unit = first_value(message, (unit_path,)).upper() or "MIN"
        try:
            number = float(amount)
        except ValueError:
            continue
        factor = _UNITS.get(unit)
        if factor is not None and 0 < number * factor < 100_000:
            return max(1, round(number * factor))
    return None


def _location(message: Message, paths) -> tuple[str, str]:
    """A PL: the point of care (PL-1) as code; room (PL-2) and facility (PL-4) as
    the name people read."""
    for path in paths:
        rep = _first_rep(message, path)
        code, room, facility = component(rep, 1), component(rep, 2), component(rep, 4)
        if code or room or facility:
            name = ", ".join(p for p in (room, facility) if p) or code
            return code or room, name
    return "", ""


def _provider(message: Message, paths) -> tuple[str, str]:
    """An XCN (id, family, given, …, prefix) or free text ("Baxter, Stanley")."""
    for path in paths:
        rep = _first_rep(message, path)
        ident, family, given, prefix = (component(rep, n) for n in (1, 2, 3, 6))
        if family or given:
            return ident, " ".join(p for p in (prefix, given, family) if p)
        if ident:
            looks_like_code = not any(ch in ident for ch in " ,")
            return (ident, "") if looks_like_code else ("", ident)
    return "", ""


# Prescriptions and fills ------------------------------------------------------------


def read_prescription(message: Message) -> PrescriptionData:
    rxe, orc = message.first("RXE"), message.first("ORC")
    rxd = message.first("RXD")
    rx_number = component_at(rxe, 15, 1) or component_at(rxd, 7, 1)
    if not rx_number:
        raise Hl7Error("RXE-15 (or RXD-7) holds no prescription number.", code="101",
                       where="RXE-15")  # fmt: skip
    drug = component_at(rxe, 2, 2) or component_at(rxd, 2, 2) or component_at(rxe, 2, 1)
    if not drug:
        raise Hl7Error("RXE-2 holds no drug.", code="101", where="RXE-2")
    ndc_field = 2 if rxe is not None else 0
    system = component_at(rxe, ndc_field, 3).upper() if ndc_field else ""
    ndc = component_at(rxe, 2, 1) if system in ("NDC", "N4") else ""
    refills = _whole(component_at(rxe, 12, 1)) or 0
    remaining = _whole(component_at(rxe, 16, 1))
    written = parse_timestamp(component_at(orc, 9, 1))
    status = component_at(orc, 1, 1).upper()
    return PrescriptionData(
        rx_number=rx_number[:32],
        drug_name=drug[:200],
        ndc=ndc[:16],
        refills_authorized=min(refills, 99),
        refills_remaining=None if remaining is None else min(remaining, min(refills, 99)),
        prescriber_name=(_provider(message, ("ORC-12", "RXE-13"))[1])[:200],
        written_on=written.local.date() if written else None,
        active=status not in ("CA", "DC", "OD", "OC"),
    )


def read_fill(message: Message, mapping: Mapping) -> FillData:
    rxd = message.first("RXD")
    if rxd is None:
        raise Hl7Error("The dispense has no RXD segment.", code="100", where="RXD")
    when = parse_timestamp(component_at(rxd, 3, 1))
    if when is None:
        raise Hl7Error("RXD-3 holds no dispense date.", code="101", where="RXD-3")
    return FillData(
        fill_number=min(_whole(component_at(rxd, 1, 1)) or 0, 32767),
        filled_on=when.local.date(),
        step=FillStep(mapping.fill_step),
        quantity=component_at(rxd, 4, 1)[:16],
        dispense_type=component_at(rxd, 33, 1)[:8],
    )


# Field access -----------------------------------------------------------------------


def component_at(fields: list | None, n: int, comp: int = 1, sub: int = 1) -> str:
    reps = repetitions(fields, n)
    return component(reps[0], comp, sub) if reps else ""


def _parse_path(path: str) -> tuple[str, int, int | None]:
    match = _PATH.match(path)
    if not match:
        raise ValueError(f"{path!r} is not a field path like 'TQ1-7' or 'SCH-11.4'")
    segment_id, n, comp = match.groups()
    return segment_id, int(n), int(comp) if comp else None


def _first_rep(message: Message, path: str) -> list:
    segment_id, n, _ = _parse_path(path)
    reps = repetitions(message.first(segment_id), n)
    return reps[0] if reps else []


def first_value(message: Message, paths) -> str:
    """The first non-empty value among `paths` (a path without a component reads
    component 1)."""
    for path in paths:
        segment_id, n, comp = _parse_path(path)
        text = component_at(message.first(segment_id), n, comp or 1)
        if text:
            return text
    return ""


def first_time(message: Message, paths):
    for path in paths:
        stamp = parse_timestamp(first_value(message, (path,)))
        if stamp is not None and stamp.has_time:
            return stamp
    return None


def _whole(text: str) -> int | None:
    try:
        number = int(float(text))
    except (ValueError, OverflowError):
        return None
    return number if number >= 0 else None
