"""The import page in a real browser (Debian's Chromium): a file with mistakes gets
its report, the corrected file is checked and applied, and the progress bar runs to
the end — with nothing refused by the Content-Security-Policy. Screens are saved
under var/screenshots/ for a person to look at."""

from __future__ import annotations

import pytest

from carebell.interop.csv import jobs
from carebell.interop.csv.models import ImportJob
from carebell.people.models import ContactPoint, Patient
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories
from tests.browser import RECORD_VIOLATIONS, no_violations, shoot, sign_in
from tests.interop.csv.conftest import PATIENTS, csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def families(mistakes: bool) -> bytes:
    rows = []
    for n in range(40):
        birth = "2019-04-30"
        mobile = f"(202) 555-{n:04d}"
        if mistakes and n == 3:
            birth = "04/30/2019"
        if mistakes and n == 7:
            mobile = "555-1234"
        rows.append([f"P{n}", f"Child{n}", "Lopez", birth, "1", "mother", "Maria", "Lopez",
                     mobile, f"maria{n}@example.org", "sms"])  # fmt: skip
    if mistakes:
        rows.append(["P40", "Ana", "", "2019-04-30", "1", "aunt", "Rosa", "Diaz", "", "", "text"])
    return csv_bytes(PATIENTS, *rows)


@pytest.fixture
def check_in_the_request(monkeypatch):
    """The check runs in the request; the apply in its own thread as in production,
    on PostgreSQL. The SQLite test database lives in memory with a shared cache, which
    lets one connection write at a time and fails the others at once (the session
    each request saves, too): there the apply runs in the request as well."""
    from django.db import connection

    launch = jobs.launch
    threads = connection.vendor == "postgresql"
    monkeypatch.setattr(
        jobs, "launch", lambda job_id, step: launch(job_id, step)
        if threads and step == jobs.APPLY else jobs.run_job(job_id, step),
    )  # fmt: skip


def test_an_administrator_corrects_a_file_and_applies_it(
    page, live_server, site, tmp_path, check_in_the_request
):
    factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1200, "height": 900})
    sign_in(page, f"{live_server.url}/", "dana")
    page.wait_for_selector("text=Today at")
    page.click("nav >> text=Import")
    page.wait_for_selector("h1:has-text('Import from a CSV file')")
    shoot(page, "csv-import")

    bad = tmp_path / "families.csv"
    bad.write_bytes(families(mistakes=True))
    page.select_option("#id_kind", "patients")
    page.set_input_files("#id_file", str(bad))
    page.click("text=Upload and check")
    page.wait_for_selector("table.import-report")
    report = page.inner_text("table.import-report")
    assert "date of birth 04/30/2019 is not a date (use YYYY-MM-DD)" in report
    assert "mobile phone 555-1234 has no area code" in report
    assert "last name is missing" in report and "relationship aunt is not one of" in report
    assert "Apply the import" not in page.inner_text("main")
    shoot(page, "csv-import-report")

    good = tmp_path / "families-corrected.csv"
    good.write_bytes(families(mistakes=False))
    page.click("text=Upload a corrected file")
    page.select_option("#id_kind", "patients")
    page.set_input_files("#id_file", str(good))
    page.click("text=Upload and check")
    page.wait_for_selector("text=40 rows checked, no problems")
    shoot(page, "csv-import-checked")
    assert Patient.objects.count() == 0
    page.click("text=Apply the import")
    page.wait_for_selector("#import-bar")
    shoot(page, "csv-import-applying")
    page.wait_for_selector("#import-outcome:has-text('Imported 40 rows: 40 new')", timeout=60_000)
    assert page.get_attribute("#import-bar", "value") == "100"
    shoot(page, "csv-import-done")
    assert Patient.objects.filter(site=site).count() == 40
    assert ContactPoint.objects.filter(value="+12025550039").exists()
    assert ImportJob.objects.filter(status="done").count() == 1
    no_violations(page)
