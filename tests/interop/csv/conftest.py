"""CSV files as a practice system writes them, and the import run on them."""

from __future__ import annotations

import csv
import io

import pytest

from carebell.interop.csv.ingest import import_csv
from tests.web.conftest import browser, page  # noqa: F401 (fixtures)
from tests.web.staff.conftest import fast_passwords, outsider, staff_of  # noqa: F401 (fixtures)


def csv_bytes(header: list[str], *rows: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def run(site):
    """run(kind, data, **options) → (report, problems)."""

    def go(kind, data: bytes, *, at=None, **options):
        problems = []
        report = import_csv(
            kind, io.BytesIO(data), at or site, on_problems=problems.extend, **options
        )
        return report, problems

    return go


PATIENTS = ["patient_id", "first_name", "last_name", "birth_date", "contact_position",
            "relationship", "contact_first_name", "contact_last_name", "mobile", "email",
            "pref_reminders"]  # fmt: skip


def family_rows() -> bytes:
    return csv_bytes(
        PATIENTS,
        ["P1", "Ana", "Lopez", "2019-04-30", "1", "mother", "Maria", "Lopez", "(202) 555-0123",
         "maria@example.org", "sms"],
        ["P1", "Ana", "Lopez", "2019-04-30", "2", "father", "Jorge", "Lopez", "", "", "email"],
        ["P2", "Ben", "Ng", "1970-01-02", "1", "self", "", "", "+1 202 555 0144", "", "sms"],
    )  # fmt: skip
