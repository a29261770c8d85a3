"""Reading one row: every column of every kind, and every problem with its row,
column, value and a reason a clinic manager can act on. Pure: no database."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carebell.interop.csv.columns import (
    COLUMNS,
    CONTACT_COLUMNS,
    MAX_LENGTH,
    SAID,
    FileKind,
)
from carebell.interop.csv.rows import (
    AppointmentRow,
    Context,
    FillRow,
    PatientRow,
    PrescriptionRow,
    Problem,
    parse_row,
    template_rows,
)

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
CONTEXT = Context(NEW_YORK, "US", dt.date(2026, 11, 25))


def parse(kind, **cells):
    return parse_row(FileKind(kind), 2, cells, CONTEXT)


def test_it_reads_every_column_of_a_patient_row():
    cells = {
        "patient_id": "P1", "first_name": " Ana ", "last_name": "Lopez",
        "birth_date": "2019-04-30", "language": "ES", "active": "no", "contact_position": "2",
        "relationship": "Mother", "contact_first_name": "Maria", "contact_last_name": "Lopez",
        "authority": "joint", "end_date": "2030-01-31", "resides_with_patient": "n",
        "contact_language": "en", "mobile": "(202) 555-0123", "home_phone": "202.555.0144",
        "email": "Maria@Example.ORG", "pref_reminders": "sms", "pref_rx_ready": "email|sms",
        "sms_consent": "yes", "call_consent": "no", "email_consent": "1",
        "consent_wording": "I agree to texts.", "consent_wording_version": "paper-2",
    }  # fmt: skip
    data, problems = parse("patients", **cells)
    assert problems == []
    assert isinstance(data, PatientRow)
    assert (data.patient_id, data.first_name, data.last_name) == ("P1", "Ana", "Lopez")
    assert (data.birth_date, data.language, data.active) == (dt.date(2019, 4, 30), "es", False)
    c = data.contact
    assert (c.position, c.relationship, c.first_name, c.last_name) == (
        2,
        "mother",
        "Maria",
        "Lopez",
    )
    assert (c.authority, c.end_date, c.resides_with_patient, c.language) == (
        "joint", dt.date(2030, 1, 31), False, "en",
    )  # fmt: skip
    assert c.mobile == ("+12025550123", "(202) 555-0123")
    assert c.home_phone == ("+12025550144", "202.555.0144")
    assert c.email == ("Maria@example.org", "Maria@Example.ORG")
    assert c.preferences == (("reminders", "sms"), ("rx_ready", "email|sms"))
    assert c.consents == (("sms", True), ("call", False), ("email", True))
    assert (c.consent_wording, c.consent_wording_version) == ("I agree to texts.", "paper-2")


def test_a_patient_row_without_contact_columns_has_no_contact():
    data, problems = parse("patients", patient_id="P1", first_name="A", last_name="B")
    assert problems == [] and data.contact is None and data.birth_date is None


def test_it_reads_every_column_of_an_appointment_row():
    data, problems = parse(
        "appointments", appointment_id="A1", patient_id="P1", starts_at="2026-12-03 09:30",
        duration_minutes="20", appointment_type="WELL", provider_code="DRS",
        provider_name="Dr. Smith", location_code="MAIN", location_name="Main office",
        status="Confirmed",
    )  # fmt: skip
    assert problems == []
    assert data == AppointmentRow(
        2, "A1", "P1", dt.datetime(2026, 12, 3, 14, 30, tzinfo=dt.UTC), 20, "WELL", "DRS",
        "Dr. Smith", "MAIN", "Main office", "confirmed",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-12-03T09:30", dt.datetime(2026, 12, 3, 14, 30, tzinfo=dt.UTC)),
        ("2026-12-03 09:30:15", dt.datetime(2026, 12, 3, 14, 30, 15, tzinfo=dt.UTC)),
        ("2026-12-03T09:30:00Z", dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)),
        ("2026-12-03T09:30:00-08:00", dt.datetime(2026, 12, 3, 17, 30, tzinfo=dt.UTC)),
        ("2026-07-01 09:30", dt.datetime(2026, 7, 1, 13, 30, tzinfo=dt.UTC)),  # summer time
    ],
)
def test_a_start_is_read_in_the_sites_zone_or_with_its_offset(text, utc):
    data, _ = parse("appointments", appointment_id="A", patient_id="P", starts_at=text)
    assert data.starts_at == utc


def test_it_reads_every_column_of_a_prescription_row():
    data, problems = parse(
        "prescriptions", rx_number="RX1", patient_id="P1", drug_name="Lisinopril 10 mg",
        ndc="00093-7339-01", maintenance="yes", dea_schedule="c4", prescriber_name="Dr. S",
        refills_authorized="5", refills_remaining="4", days_supply="90", status="inactive",
        written_on="2026-11-01",
    )  # fmt: skip
    assert problems == []
    assert data == PrescriptionRow(
        2, "RX1", "P1", "Lisinopril 10 mg", "00093-7339-01", True, "C4", "Dr. S", 5, 4, 90,
        "inactive", dt.date(2026, 11, 1),
    )  # fmt: skip


def test_it_reads_every_column_of_a_fill_row():
    data, problems = parse(
        "fills", rx_number="RX1", fill_number="0", filled_on="2026-11-20", days_supply="30",
        step="ready", step_at="2026-11-20 14:05",
    )  # fmt: skip
    assert problems == []
    assert data == FillRow(
        2, "RX1", 0, dt.date(2026, 11, 20), 30, "ready",
        dt.datetime(2026, 11, 20, 19, 5, tzinfo=dt.UTC),
    )  # fmt: skip


BASE = {
    "patients": {"patient_id": "P1", "first_name": "Ana", "last_name": "Lopez"},
    "appointments": {"appointment_id": "A1", "patient_id": "P1", "starts_at": "2026-12-03 09:30"},
    "prescriptions": {"rx_number": "RX1", "patient_id": "P1", "drug_name": "X"},
    "fills": {"rx_number": "RX1", "fill_number": "1", "filled_on": "2026-11-20"},
}
CONTACT = {"contact_position": "1", "relationship": "mother"}

PROBLEMS = [
    ("patients", {"birth_date": "13/31/1980"}, "birth_date",
     "date of birth 13/31/1980 is not a date (use YYYY-MM-DD)"),
    ("patients", {"birth_date": "1980-02-30"}, "birth_date",
     "date of birth 1980-02-30 is not a day of the calendar (use YYYY-MM-DD)"),
    ("patients", {"birth_date": "2027-01-01"}, "birth_date", "date of birth is in the future"),
    ("patients", {"patient_id": ""}, "patient_id", "patient id is missing"),
    ("patients", {"first_name": " "}, "first_name", "first name is missing"),
    ("patients", {"last_name": "x" * 101}, "last_name", "last name is longer than 100 characters"),
    ("patients", {"language": "fr"}, "language", "language fr is not one of: en, es"),
    ("patients", {"active": "maybe"}, "active", "active maybe is not yes or no"),
    ("patients", {"first_name": "A\x07"}, "first_name", "first name holds control characters"),
    ("patients", {"mobile": "555-1234"}, "contact_position",
     "contact position is missing (1 for the first contact)"),
    ("patients", {**CONTACT, "contact_position": "0"}, "contact_position",
     "contact position 0 is not a whole number from 1 to 20"),
    ("patients", {**CONTACT, "relationship": "aunt"}, "relationship",
     "relationship aunt is not one of: self, mother, father, guardian, caregiver, other"),
    ("patients", {**CONTACT, "authority": "full"}, "authority",
     "authority full is not one of: joint, exclusive, none"),
    ("patients", {**CONTACT, "end_date": "tomorrow"}, "end_date",
     "end date tomorrow is not a date (use YYYY-MM-DD)"),
    ("patients", {**CONTACT, "resides_with_patient": "sometimes"}, "resides_with_patient",
     "resides with patient sometimes is not yes or no"),
    ("patients", {**CONTACT, "contact_language": "de"}, "contact_language",
     "contact's language de is not one of: en, es"),
    ("patients", {**CONTACT, "mobile": "555-1234"}, "mobile",
     "mobile phone 555-1234 has no area code"),
    ("patients", {**CONTACT, "mobile": "12"}, "mobile",
     "mobile phone 12 is too short for a phone number"),
    ("patients", {**CONTACT, "home_phone": "(202) 555-01234567"}, "home_phone",
     "home phone (202) 555-01234567 is too long for a phone number"),
    ("patients", {**CONTACT, "home_phone": "call me"}, "home_phone",
     "home phone call me is not a phone number"),
    ("patients", {**CONTACT, "mobile": "(999) 555-0123"}, "mobile",
     "mobile phone (999) 555-0123 is not a number in use (check the digits, or add +country code)"),
    ("patients", {**CONTACT, "email": "maria at example"}, "email",
     "email maria at example is not an email address (like name@example.org)"),
    ("patients", {**CONTACT, "pref_reminders": "text"}, "pref_reminders",
     "reminders preference text is not one of: none, email, sms, call, email+sms, email+sms+call, "
     "email|sms, sms|call, email|sms|call"),
    ("patients", {**CONTACT, "sms_consent": "ok"}, "sms_consent",
     "SMS consent ok is not yes or no"),
    ("patients", {**CONTACT, "consent_wording_version": "v" * 33}, "consent_wording_version",
     "consent wording version is longer than 32 characters"),
    ("appointments", {"appointment_id": ""}, "appointment_id", "appointment id is missing"),
    ("appointments", {"patient_id": ""}, "patient_id", "patient id is missing"),
    ("appointments", {"starts_at": "12/03/2026 9:30am"}, "starts_at",
     "start 12/03/2026 9:30am is not a date and time (use YYYY-MM-DD HH:MM)"),
    ("appointments", {"starts_at": "2026-12-03T09:30:00"}, "starts_at", None),
    ("appointments", {"starts_at": "2026-12-03 25:30"}, "starts_at",
     "start 2026-12-03 25:30 is not a time of the calendar (use YYYY-MM-DD HH:MM)"),
    ("appointments", {"starts_at": "2026-03-08 02:30"}, "starts_at",
     "start 2026-03-08 02:30 does not exist in America/New_York: the clocks skip that hour"),
    ("appointments", {"duration_minutes": "0"}, "duration_minutes",
     "duration 0 is not a whole number from 1 to 1440"),
    ("appointments", {"duration_minutes": "1.5"}, "duration_minutes",
     "duration 1.5 is not a whole number from 1 to 1440"),
    ("appointments", {"status": "pending"}, "status",
     "status pending is not one of: booked, confirmed, cancel_requested, cancelled, no_show, "
     "arrived, completed, deleted"),
    ("appointments", {"provider_code": "p" * 65}, "provider_code",
     "provider code is longer than 64 characters"),
    ("prescriptions", {"drug_name": ""}, "drug_name", "drug name is missing"),
    ("prescriptions", {"maintenance": "x"}, "maintenance", "maintenance x is not yes or no"),
    ("prescriptions", {"dea_schedule": "C1"}, "dea_schedule",
     "DEA schedule C1 is not one of: C2, C3, C4, C5"),
    ("prescriptions", {"refills_authorized": "2", "refills_remaining": "3"}, "refills_remaining",
     "refills remaining 3 is more than the 2 authorised"),
    ("prescriptions", {"refills_remaining": "3"}, "refills_authorized",
     "refills authorised is missing (needed with refills remaining)"),
    ("prescriptions", {"days_supply": "400"}, "days_supply",
     "days supply 400 is not a whole number from 1 to 365"),
    ("prescriptions", {"status": "on hold"}, "status",
     "status on hold is not one of: active, inactive, transferred, expired"),
    ("prescriptions", {"written_on": "2026-13-01"}, "written_on",
     "date written 2026-13-01 is not a day of the calendar (use YYYY-MM-DD)"),
    ("prescriptions", {"ndc": "1" * 17}, "ndc", "ndc is longer than 16 characters"),
    ("fills", {"fill_number": "-1"}, "fill_number",
     "fill number -1 is not a whole number from 0 to 99"),
    ("fills", {"filled_on": ""}, "filled_on", "date filled is missing"),
    ("fills", {"step": "shipped"}, "step",
     "step shipped is not one of: received, insurance_approved, verified_for_fill, "
     "label_printed, ready, picked_up, returned_to_stock"),
    ("fills", {"step_at": "noon"}, "step_at",
     "step time noon is not a date and time (use YYYY-MM-DD HH:MM)"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "cells", "column", "reason"), PROBLEMS)
def test_each_problem_names_its_row_column_value_and_reason(kind, cells, column, reason):
    data, problems = parse(kind, **{**BASE[kind], **cells})
    if reason is None:  # a local time without an offset is fine
        assert problems == [] and data is not None
        return
    value = "" if column == "contact_position" and "mobile" in cells else cells.get(column, "")
    assert data is None
    assert problems == [Problem(2, column, value.strip(), reason)]


def test_every_problem_of_a_row_is_reported_not_only_the_first():
    _, problems = parse(
        "patients", patient_id="", first_name="A", last_name="B", birth_date="x",
        contact_position="1", relationship="mother", mobile="555-1234", email="no",
    )  # fmt: skip
    assert [p.column for p in problems] == ["birth_date", "patient_id", "mobile", "email"]


def test_each_kind_has_a_template_of_its_documented_columns():
    for kind in FileKind:
        header, example = template_rows(kind)
        assert header == [c.name for c in COLUMNS[kind]] and len(example) == len(header)
        cells = dict(zip(header, example, strict=True))
        data, problems = parse_row(kind, 2, cells, CONTEXT)
        assert problems == [] and data is not None, kind  # the example row itself imports


def test_the_column_table_names_only_documented_columns_each_once_per_kind():
    documented = {c.name for columns in COLUMNS.values() for c in columns}
    assert set(SAID) | set(MAX_LENGTH) | set(CONTACT_COLUMNS) <= documented
    patients = {c.name for c in COLUMNS[FileKind.PATIENTS]}
    assert set(CONTACT_COLUMNS) <= patients
    for kind, columns in COLUMNS.items():
        names = [c.name for c in columns]
        assert len(names) == len(set(names)), kind
        assert all(c.meaning for c in columns) and any(c.required for c in columns), kind


# Fuzzing: whatever the cells hold, the parser answers data or problems, never raises.
# One draw of bytes per example, split into the kind's columns: drawing each cell as
# its own text costs Hypothesis far more than the parsing it tests.

_COLUMN_NAMES = {kind: [c.name for c in COLUMNS[kind]] for kind in FileKind}
_NEAR_MISSES = [
    "", "yes", "no", "1", "0", "2026-12-03 09:30", "2026-02-30", "+12025550123", "555-1234",
    "a@b.co", "sms", "email|sms", "mother", "self", "C2", "ready", "2026-03-08 02:30",
    "9" * 30, "2026-12-03T09:30+99:00", "2026-11-01 01:30", "+999 1234", "\u00e9\u00e8@x.org",
]  # fmt: skip
ROWS = st.tuples(
    st.sampled_from(list(FileKind)),
    st.binary(max_size=240),
    st.lists(st.sampled_from(_NEAR_MISSES), max_size=6),
)


def cells_of(kind, raw: bytes, picks: list[str]) -> dict[str, str]:
    names = _COLUMN_NAMES[kind]
    values = raw.decode("utf-8", errors="replace").split(",")
    cells = dict(zip(names, values + picks, strict=False))
    for n, pick in enumerate(picks):  # near misses land on columns the bytes left alone
        cells.setdefault(names[(len(values) + n) % len(names)], pick)
    return cells


@settings(
    max_examples=10_000, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(ROWS)
def test_the_row_parser_never_crashes(case):
    kind, raw, picks = case
    data, problems = parse_row(kind, 7, cells_of(kind, raw, picks), CONTEXT)
    assert (data is None) == bool(problems)
    for problem in problems:
        assert problem.row == 7 and problem.reason
        assert problem.column == "" or problem.column in _COLUMN_NAMES[kind]
