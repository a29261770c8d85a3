"""The documented columns of each kind of CSV file, as data (no logic).

`COLUMNS` is what the README, the template files, the upload page and the header
check all read; `SAID` names a column in a reason as a clinic manager says it;
`MAX_LENGTH` is the longest value the database keeps. `carebell.interop.csv.rows`
reads a row by these.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from carebell.core.vocab import Category, Preference


class FileKind(StrEnum):
    PATIENTS = "patients"
    APPOINTMENTS = "appointments"
    PRESCRIPTIONS = "prescriptions"
    FILLS = "fills"


class Column(NamedTuple):
    """One documented column: its header name, what it holds (for the README and the
    upload page), an example value (for the template) and whether a row needs it."""

    name: str
    meaning: str
    example: str
    required: bool = False


LANGUAGES = ("en", "es")
PREFERENCE_CATEGORIES = tuple(Category)


def _preference_columns() -> tuple[Column, ...]:
    values = ", ".join(p.value for p in Preference if p.value)
    return tuple(
        Column(f"pref_{c.value}", f"The contact's choice for {c.value}: {values}", "")
        for c in PREFERENCE_CATEGORIES
    )


COLUMNS: dict[FileKind, tuple[Column, ...]] = {
    FileKind.PATIENTS: (
        Column(
            "patient_id", "The patient's id in your system (upsert key)", "P1001", required=True
        ),
        Column("first_name", "Patient's first name", "Ana", required=True),
        Column("last_name", "Patient's last name", "Lopez", required=True),
        Column("birth_date", "Date of birth, YYYY-MM-DD", "2019-04-30"),
        Column("language", "en or es (default en)", "es"),
        Column("active", "yes or no (default yes)", "yes"),
        Column(
            "contact_position",
            "1 for the first contact, 2 for the next…; one row per contact (repeat the "
            "patient's columns); blank: a row with no contact",
            "1",
        ),
        Column("relationship", "self, mother, father, guardian, caregiver, other", "mother"),
        Column("contact_first_name", "Contact's first name (self: the patient's)", "Maria"),
        Column("contact_last_name", "Contact's last name (self: the patient's)", "Lopez"),
        Column("authority", "joint, exclusive, none (blank: not recorded)", "joint"),
        Column("end_date", "Last day the contact hears about the patient", ""),
        Column("resides_with_patient", "yes or no (default yes)", "yes"),
        Column("contact_language", "en or es (default: the patient's)", "es"),
        Column("mobile", "Mobile phone; local numbers read in the site's region", "(202) 555-0123"),
        Column("home_phone", "Home phone", ""),
        Column("email", "Email address", "maria@example.org"),
        *_preference_columns(),
        Column(
            "sms_consent", "yes: the contact agreed to texts at the mobile; no: withdrew", "yes"
        ),
        Column("call_consent", "yes or no: automated calls at the mobile or home phone", ""),
        Column("email_consent", "yes or no: email at the address", ""),
        Column(
            "consent_wording",
            "The exact words the contact agreed to (default: the site's current consent wording)",
            "",
        ),
        Column("consent_wording_version", "Their version name, up to 32 characters", ""),
    ),
    FileKind.APPOINTMENTS: (
        Column(
            "appointment_id",
            "The appointment's id in your system (upsert key)",
            "A5001",
            required=True,
        ),
        Column("patient_id", "The patient's id, as in the patients file", "P1001", required=True),
        Column(
            "starts_at",
            "Start, YYYY-MM-DD HH:MM in the site's time zone (or ISO 8601 with an offset)",
            "2026-12-03 09:30",
            required=True,
        ),
        Column("duration_minutes", "Length in minutes (default 15)", "20"),
        Column("appointment_type", "Type code, as the automated messages filter it", "WELL"),
        Column("provider_code", "Provider code", "DRS"),
        Column("provider_name", "Provider name", "Dr. Smith"),
        Column("location_code", "Location code", "MAIN"),
        Column("location_name", "Location name", "Main office"),
        Column(
            "status",
            "booked, confirmed, cancel_requested, cancelled, no_show, arrived, completed, "
            "deleted (default booked)",
            "booked",
        ),
    ),
    FileKind.PRESCRIPTIONS: (
        Column("rx_number", "The prescription number (upsert key)", "RX7001", required=True),
        Column("patient_id", "The patient's id, as in the patients file", "P1001", required=True),
        Column("drug_name", "Drug name and strength", "Lisinopril 10 mg", required=True),
        Column("ndc", "National Drug Code", "00093-7339-01"),
        Column("maintenance", "yes or no (default yes)", "yes"),
        Column("dea_schedule", "C2, C3, C4, C5 (blank: not controlled)", ""),
        Column("prescriber_name", "Prescriber", "Dr. Smith"),
        Column("refills_authorized", "Refills authorised (default 0)", "5"),
        Column("refills_remaining", "Refills left, at most those authorised", "4"),
        Column("days_supply", "Days one fill lasts (default 30)", "30"),
        Column("status", "active, inactive, transferred, expired (default active)", "active"),
        Column("written_on", "Date written, YYYY-MM-DD", "2026-11-01"),
    ),
    FileKind.FILLS: (
        Column(
            "rx_number",
            "The prescription number, as in the prescriptions file",
            "RX7001",
            required=True,
        ),
        Column(
            "fill_number",
            "0 for the original fill, then 1, 2… (upsert key with rx_number)",
            "1",
            required=True,
        ),
        Column("filled_on", "Date filled, YYYY-MM-DD", "2026-11-20", required=True),
        Column("days_supply", "Days this fill lasts (default: the prescription's)", "30"),
        Column(
            "step",
            "received, insurance_approved, verified_for_fill, label_printed, ready, "
            "picked_up, returned_to_stock (default received)",
            "ready",
        ),
        Column(
            "step_at",
            "When the fill reached that step, YYYY-MM-DD HH:MM in the site's time zone",
            "2026-11-20 14:05",
        ),
    ),
}

#: Words for the columns in reasons, as a clinic manager says them.
SAID = {
    "patient_id": "patient id",
    "first_name": "first name",
    "last_name": "last name",
    "birth_date": "date of birth",
    "contact_position": "contact position",
    "contact_first_name": "contact's first name",
    "contact_last_name": "contact's last name",
    "end_date": "end date",
    "resides_with_patient": "resides with patient",
    "contact_language": "contact's language",
    "home_phone": "home phone",
    "mobile": "mobile phone",
    "appointment_id": "appointment id",
    "starts_at": "start",
    "duration_minutes": "duration",
    "appointment_type": "appointment type",
    "rx_number": "prescription number",
    "drug_name": "drug name",
    "dea_schedule": "DEA schedule",
    "refills_authorized": "refills authorised",
    "refills_remaining": "refills remaining",
    "days_supply": "days supply",
    "written_on": "date written",
    "fill_number": "fill number",
    "filled_on": "date filled",
    "step_at": "step time",
    "sms_consent": "SMS consent",
    "call_consent": "call consent",
    "email_consent": "email consent",
    "consent_wording": "consent wording",
    "consent_wording_version": "consent wording version",
    **{f"pref_{c.value}": f"{c.value.replace('_', ' ')} preference" for c in Category},
}

#: Longest values the database keeps, per column.
MAX_LENGTH = {
    "patient_id": 64, "first_name": 100, "last_name": 100, "contact_first_name": 100,
    "contact_last_name": 100, "email": 254, "appointment_id": 64, "appointment_type": 64,
    "provider_code": 64, "provider_name": 200, "location_code": 64, "location_name": 200,
    "consent_wording": 4000, "consent_wording_version": 32, "rx_number": 32, "drug_name": 200,
    "ndc": 16, "prescriber_name": 200,
}  # fmt: skip


#: The columns of a patients file that describe its contact.
CONTACT_COLUMNS = (
    "relationship", "contact_first_name", "contact_last_name", "authority", "end_date",
    "resides_with_patient", "contact_language", "mobile", "home_phone", "email",
    *(f"pref_{c.value}" for c in PREFERENCE_CATEGORIES), "sms_consent", "call_consent",
    "email_consent", "consent_wording", "consent_wording_version",
)  # fmt: skip
