"""`carebell import-csv`: exit status 0 when done, 1 when the file has problems
(nothing written), 2 for usage errors; one line per problem, or JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.people.models import Patient
from tests.interop.csv.conftest import csv_bytes, family_rows

pytestmark = pytest.mark.django_db


def carebell(*args) -> int:
    """The command's exit status. In the test's process (the command line's own
    runner would close the test database's connection when done)."""
    try:
        call_command("import_csv", *args)
    except CommandError as error:
        sys.stderr.write(f"carebell: {error}\n")
        return error.returncode
    except SystemExit as exit:
        return exit.code or 0
    return 0


@pytest.fixture
def patients_file(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_bytes(family_rows())
    return path


def test_it_imports_a_file_and_says_what_it_did(site, patients_file, capsys):
    assert carebell("patients", str(patients_file)) == 0
    out = capsys.readouterr().out
    assert "Imported. 3 rows: 3 new, 0 changed, 0 unchanged." in out
    assert Patient.objects.filter(site=site).count() == 2
    event = AuditEvent.objects.get(action="import")
    assert (event.actor_label, event.detail["rows"], event.site_id) == ("cli", 3, site.pk)


def test_a_dry_run_writes_nothing(site, patients_file, capsys):
    assert carebell("patients", str(patients_file), "--dry-run", f"--site={site.pk}") == 0
    assert "Dry run, nothing written. 3 rows: 3 new" in capsys.readouterr().out
    assert Patient.objects.count() == 0


def test_problems_exit_1_one_line_each_and_nothing_written(site, tmp_path, capsys):
    Patient.objects.create(site=site, source="csv", external_id="P1", first_name="A", last_name="B")
    path = tmp_path / "appointments.csv"
    path.write_bytes(csv_bytes(["appointment_id", "patient_id", "starts_at"],
                               ["A1", "P1", "2026-12-03 09:30"], ["A2", "P1", "12/03/2026"],
                               ["A3", "P8", "2026-12-03 10:30"]))  # fmt: skip
    assert carebell("appointments", str(path), "--site", site.name) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "row 3, starts_at: start 12/03/2026 is not a date and time (use YYYY-MM-DD HH:MM)",
        "row 4, patient_id: patient P8 is not a patient of this site: "
        "import the patients file first",
        "2 problems in 3 rows: nothing was written.",
    ]
    assert Appointment.objects.count() == 0


def test_json_reports_every_problem(site, tmp_path, capsys):
    path = tmp_path / "p.csv"
    path.write_bytes(csv_bytes(["patient_id", "first_name", "last_name", "birth_date"],
                               ["P1", "Ana", "", "13/31/1980"]))  # fmt: skip
    assert carebell("patients", str(path), "--json", "--dry-run") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problem_count"] == 2 and report["dry_run"] and not report["applied"]
    assert report["problems"] == [
        {"row": 2, "column": "birth_date", "value": "13/31/1980",
         "reason": "date of birth 13/31/1980 is not a date (use YYYY-MM-DD)"},
        {"row": 2, "column": "last_name", "value": "", "reason": "last name is missing"},
    ]  # fmt: skip


def test_an_unreadable_file_is_one_line_and_exit_1(site, tmp_path, capsys):
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    assert carebell("patients", str(path)) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("carebell: This is not a CSV text file")
    assert "Traceback" not in err


def test_usage_errors_exit_2(site, other_org_site, patients_file, capsys):
    assert carebell("patients", str(patients_file)) == 2  # two sites: which?
    assert "more than one site: say which with --site" in capsys.readouterr().err
    assert carebell("patients", "/no/such.csv", "--site", str(site.pk)) == 2
    assert carebell("patients", str(patients_file), "--site", "nowhere") == 2
    assert "no site 'nowhere'" in capsys.readouterr().err
    assert Patient.objects.count() == 0


def test_the_command_line_refuses_an_unknown_kind_with_status_2(tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "carebell"), "import-csv", "visits", "x.csv"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={"PATH": "/usr/bin:/bin", "CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    assert "invalid choice: 'visits'" in done.stderr and "Traceback" not in done.stderr
