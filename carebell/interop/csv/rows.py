"""One CSV row to plain data (pure: no Django, no database, no clock).

Each kind of file has its documented columns (`columns.COLUMNS`, which the README,
the template CSVs and the header check all read). `parse_row` turns a row's cells into a
NamedTuple of that kind, or into the problems that stop it, each naming the row,
the column, the value and a reason a clinic manager can act on.

A blank cell means "not given": an import never clears what carebell already holds
(a field left blank keeps its value; a new record takes the default).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Mapping
from typing import NamedTuple

import phonenumbers

from carebell.core.vocab import (
    AppointmentStatus,
    Authority,
    DeaSchedule,
    FillStep,
    Preference,
    PrescriptionStatus,
    Relationship,
)
from carebell.interop.csv.columns import (
    COLUMNS,
    CONTACT_COLUMNS,
    LANGUAGES,
    MAX_LENGTH,
    PREFERENCE_CATEGORIES,
    SAID,
    FileKind,
)


class Problem(NamedTuple):
    """Why one row cannot be imported: `row` counts as a spreadsheet does (the
    header is row 1); `column` is blank for a problem of the whole row."""

    row: int
    column: str
    value: str
    reason: str


class Context(NamedTuple):
    """What reading a row needs to know of the site."""

    zone: zoneinfo.ZoneInfo
    region: str  # ISO country code for phone numbers without one
    today: dt.date


# The rows ---------------------------------------------------------------------------


class ContactRow(NamedTuple):
    position: int
    relationship: str | None
    first_name: str | None
    last_name: str | None
    authority: str | None
    end_date: dt.date | None
    resides_with_patient: bool | None
    language: str | None
    mobile: tuple[str, str] | None  # (E.164, as written)
    home_phone: tuple[str, str] | None
    email: tuple[str, str] | None
    preferences: tuple[tuple[str, str], ...]  # (category, preference)
    consents: tuple[tuple[str, bool], ...] = ()  # (channel, granted)
    consent_wording: str | None = None
    consent_wording_version: str | None = None


class PatientRow(NamedTuple):
    row: int
    patient_id: str
    first_name: str
    last_name: str
    birth_date: dt.date | None
    language: str | None
    active: bool | None
    contact: ContactRow | None


class AppointmentRow(NamedTuple):
    row: int
    appointment_id: str
    patient_id: str
    starts_at: dt.datetime  # aware, UTC
    duration_minutes: int | None
    appointment_type: str | None
    provider_code: str | None
    provider_name: str | None
    location_code: str | None
    location_name: str | None
    status: str | None


class PrescriptionRow(NamedTuple):
    row: int
    rx_number: str
    patient_id: str
    drug_name: str
    ndc: str | None
    maintenance: bool | None
    dea_schedule: str | None
    prescriber_name: str | None
    refills_authorized: int | None
    refills_remaining: int | None
    days_supply: int | None
    status: str | None
    written_on: dt.date | None


class FillRow(NamedTuple):
    row: int
    rx_number: str
    fill_number: int
    filled_on: dt.date
    days_supply: int | None
    step: str | None
    step_at: dt.datetime | None


Row = PatientRow | AppointmentRow | PrescriptionRow | FillRow


YES = frozenset({"yes", "y", "true", "1"})
NO = frozenset({"no", "n", "false", "0"})


class _Bad(Exception):
    """A cell's problem: the reason after "<column> <value>"."""


# Reading cells ----------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def read_date(text: str) -> dt.date:
    match = _DATE.match(text)
    if not match:
        raise _Bad("is not a date (use YYYY-MM-DD)")
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        raise _Bad("is not a day of the calendar (use YYYY-MM-DD)") from None


def read_time(text: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A local time of the site's zone, or ISO 8601 with an offset; in UTC."""
    match = _LOCAL.match(text)
    if match:
        parts = [int(p) for p in match.groups(default="0")]
        try:
            naive = dt.datetime(*parts)
        except ValueError:
            raise _Bad("is not a time of the calendar (use YYYY-MM-DD HH:MM)") from None
        local = naive.replace(tzinfo=zone)
        back = local.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if back != naive:
            raise _Bad(f"does not exist in {zone.key}: the clocks skip that hour")
        return local.astimezone(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _Bad("is not a date and time (use YYYY-MM-DD HH:MM)") from None
    if moment.tzinfo is None:
        raise _Bad("is not a date and time (use YYYY-MM-DD HH:MM)")
    return moment.astimezone(dt.UTC)


def read_int(text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text):
        raise _Bad(f"is not a whole number from {low} to {high}")
    number = int(text)
    if not low <= number <= high:
        raise _Bad(f"is not a whole number from {low} to {high}")
    return number


def read_yes_no(text: str) -> bool:
    word = text.lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise _Bad("is not yes or no")


def read_choice(values) -> Callable[[str], str]:
    allowed = {str(v).lower(): str(v) for v in values if str(v)}

    def read(text: str) -> str:
        found = allowed.get(text.lower())
        if found is None:
            raise _Bad(f"is not one of: {', '.join(allowed.values())}")
        return found

    return read


_REASONS = {
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "has no area code",
    phonenumbers.ValidationResult.TOO_SHORT: "is too short for a phone number",
    phonenumbers.ValidationResult.INVALID_LENGTH: "has the wrong number of digits",
    phonenumbers.ValidationResult.TOO_LONG: "is too long for a phone number",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "has a country code that does not exist",
}


def read_phone(text: str, region: str) -> tuple[str, str]:
    """(E.164, as written)."""
    if len(text) > 40 or not re.search(r"\d", text):
        raise _Bad("is not a phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise _Bad("is not a phone number") from None
    why = phonenumbers.is_possible_number_with_reason(number)
    if why in _REASONS:
        raise _Bad(_REASONS[why])
    if not phonenumbers.is_valid_number(number):
        raise _Bad("is not a number in use (check the digits, or add +country code)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), text


def read_email(text: str) -> tuple[str, str]:
    if len(text) > 254 or not _EMAIL.match(text):
        raise _Bad("is not an email address (like name@example.org)")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}", text


# Rows -------------------------------------------------------------------------------


class _Cells:
    """A row's cells, read one column at a time, collecting the problems."""

    def __init__(self, row: int, cells: Mapping[str, str]) -> None:
        self.row = row
        self.cells = cells
        self.problems: list[Problem] = []

    def raw(self, name: str) -> str:
        return (self.cells.get(name) or "").strip()

    def given(self, *names: str) -> bool:
        return any(self.raw(n) for n in names)

    def problem(self, name: str, value: str, reason: str) -> None:
        self.problems.append(Problem(self.row, name, value, reason))

    def get(self, name: str, read: Callable[[str], object] | None = None, *, required=False):
        text = self.raw(name)
        said = SAID.get(name, name.replace("_", " "))
        if not text:
            if required:
                self.problem(name, "", f"{said} is missing")
            return None
        if _CONTROL.search(text):
            self.problem(name, text, f"{said} holds control characters")
            return None
        if len(text) > MAX_LENGTH.get(name, 254):
            self.problem(
                name, text, f"{said} is longer than {MAX_LENGTH.get(name, 254)} characters"
            )
            return None
        if read is None:
            return text
        try:
            return read(text)
        except _Bad as bad:
            self.problem(name, text, f"{said} {text} {bad}")
            return None


def parse_row(kind: FileKind, row: int, cells: Mapping[str, str], context: Context):
    """(the row's data, []) or (None, its problems)."""
    cells_ = _Cells(row, cells)
    data = _READERS[FileKind(kind)](cells_, context)
    if cells_.problems:
        return None, cells_.problems
    return data, []


def _patient(c: _Cells, ctx: Context) -> PatientRow | None:
    birth = c.get("birth_date", read_date)
    if birth is not None and birth > ctx.today:
        c.problem("birth_date", c.raw("birth_date"), "date of birth is in the future")
    return PatientRow(
        c.row,
        c.get("patient_id", required=True),
        c.get("first_name", required=True),
        c.get("last_name", required=True),
        birth,
        c.get("language", read_choice(LANGUAGES)),
        c.get("active", read_yes_no),
        _contact(c, ctx),
    )


def _contact(c: _Cells, ctx: Context) -> ContactRow | None:
    position = c.get("contact_position", lambda t: read_int(t, 1, 20))
    if position is None:
        if not c.raw("contact_position") and c.given(*CONTACT_COLUMNS):
            c.problem(
                "contact_position", "", "contact position is missing (1 for the first contact)"
            )
        return None
    relationship = c.get("relationship", read_choice(Relationship))
    preferences = []
    for category in PREFERENCE_CATEGORIES:
        value = c.get(f"pref_{category.value}", read_choice(Preference))
        if value is not None:
            preferences.append((category.value, value))
    return ContactRow(
        position,
        relationship,
        c.get("contact_first_name"),
        c.get("contact_last_name"),
        c.get("authority", read_choice(Authority)),
        c.get("end_date", read_date),
        c.get("resides_with_patient", read_yes_no),
        c.get("contact_language", read_choice(LANGUAGES)),
        c.get("mobile", lambda t: read_phone(t, ctx.region)),
        c.get("home_phone", lambda t: read_phone(t, ctx.region)),
        c.get("email", read_email),
        tuple(preferences),
        tuple(
            (channel, granted)
            for channel in ("sms", "call", "email")
            if (granted := c.get(f"{channel}_consent", read_yes_no)) is not None
        ),
        c.get("consent_wording"),
        c.get("consent_wording_version"),
    )


def _appointment(c: _Cells, ctx: Context) -> AppointmentRow:
    return AppointmentRow(
        c.row,
        c.get("appointment_id", required=True),
        c.get("patient_id", required=True),
        c.get("starts_at", lambda t: read_time(t, ctx.zone), required=True),
        c.get("duration_minutes", lambda t: read_int(t, 1, 1440)),
        c.get("appointment_type"),
        c.get("provider_code"),
        c.get("provider_name"),
        c.get("location_code"),
        c.get("location_name"),
        c.get("status", read_choice(AppointmentStatus)),
    )


def _prescription(c: _Cells, ctx: Context) -> PrescriptionRow:
    authorized = c.get("refills_authorized", lambda t: read_int(t, 0, 99))
    remaining = c.get("refills_remaining", lambda t: read_int(t, 0, 99))
    if remaining is not None and authorized is None and not c.raw("refills_authorized"):
        c.problem(
            "refills_authorized",
            "",
            "refills authorised is missing (needed with refills remaining)",
        )
    elif remaining is not None and authorized is not None and remaining > authorized:
        c.problem(
            "refills_remaining",
            c.raw("refills_remaining"),
            f"refills remaining {remaining} is more than the {authorized} authorised",
        )
    return PrescriptionRow(
        c.row,
        c.get("rx_number", required=True),
        c.get("patient_id", required=True),
        c.get("drug_name", required=True),
        c.get("ndc"),
        c.get("maintenance", read_yes_no),
        c.get("dea_schedule", read_choice(DeaSchedule)),
        c.get("prescriber_name"),
        authorized,
        remaining,
        c.get("days_supply", lambda t: read_int(t, 1, 365)),
        c.get("status", read_choice(PrescriptionStatus)),
        c.get("written_on", read_date),
    )


def _fill(c: _Cells, ctx: Context) -> FillRow:
    return FillRow(
        c.row,
        c.get("rx_number", required=True),
        c.get("fill_number", lambda t: read_int(t, 0, 99), required=True),
        c.get("filled_on", read_date, required=True),
        c.get("days_supply", lambda t: read_int(t, 1, 365)),
        c.get("step", read_choice(FillStep)),
        c.get("step_at", lambda t: read_time(t, ctx.zone)),
    )


_READERS = {
    FileKind.PATIENTS: _patient,
    FileKind.APPOINTMENTS: _appointment,
    FileKind.PRESCRIPTIONS: _prescription,
    FileKind.FILLS: _fill,
}


def key_of(data: Row) -> tuple:
    """What identifies the record a row writes, for finding a file's duplicates."""
    if isinstance(data, PatientRow):
        return (data.patient_id, data.contact.position if data.contact else None)
    if isinstance(data, AppointmentRow):
        return (data.appointment_id,)
    if isinstance(data, PrescriptionRow):
        return (data.rx_number,)
    return (data.rx_number, data.fill_number)


def template_rows(kind: FileKind) -> tuple[list[str], list[str]]:
    """The header and an example row of a template file."""
    columns = COLUMNS[FileKind(kind)]
    return [c.name for c in columns], [c.example for c in columns]
