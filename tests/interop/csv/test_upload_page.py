"""The staff app's import page: upload, the checked report, apply; per role and per
site; oversize and malformed files get a clear answer."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.interop.csv import jobs
from carebell.interop.csv.models import ImportJob
from carebell.people.models import Patient
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests.interop.csv.conftest import PATIENTS, csv_bytes, family_rows

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_jobs(monkeypatch):
    """The job runs in the request's thread, so it sees the test's transaction."""
    monkeypatch.setattr(jobs, "launch", lambda job_id, step: jobs.run_job(job_id, step))


@pytest.fixture
def admin(staff_of):
    return staff_of(SYSTEM_ADMINISTRATOR)


def upload(client, data: bytes, kind="patients", name="maple-families.csv", capture=None):
    file = SimpleUploadedFile(name, data, content_type="text/csv")
    with capture(execute=True):
        return client.post(reverse("staff:import"), {"kind": kind, "file": file})


def test_an_administrator_uploads_checks_and_applies_a_file(
    admin, site, django_capture_on_commit_callbacks
):
    response = upload(admin, family_rows(), capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "staff:import-job", args=[job.pk]
    )
    assert (job.status, job.rows, job.created, job.site) == ("checked", 3, 3, site)
    assert Patient.objects.count() == 0  # checked, not applied
    page = admin.get(response.url)
    assert b"3 rows checked, no problems" in page.content and b"Apply the import" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(reverse("staff:import-apply", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == "done" and job.outcome == "Imported 3 rows: 3 new, 0 changed, 0 unchanged."
    assert Patient.objects.filter(site=site).count() == 2
    assert Patient.objects.first().contacts.exists()
    patient_audit = AuditEvent.objects.filter(object_type="people.patient").first()
    assert patient_audit.actor == admin.user  # the importing user is the actor
    steps = AuditEvent.objects.filter(object_type="interop_csv.importjob").values_list(
        "action", flat=True
    )
    assert {"upload", "import", "apply"} <= set(steps)
    assert not (jobs.upload_dir() / job.stored_as).exists()  # the file goes once applied


def test_the_report_lists_every_problem_a_page_at_a_time(
    admin, site, django_capture_on_commit_callbacks, monkeypatch
):
    from carebell.web.staff.views import imports

    monkeypatch.setattr(imports, "PAGE_SIZE", 2)
    rows = [[f"P{n}", "Ana", "Lopez", "13/31/1980", "", "", "", "", "", "", ""] for n in range(3)]
    upload(admin, csv_bytes(PATIENTS, *rows), capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    assert (job.status, job.problem_count) == ("rejected", 3)
    first = admin.get(reverse("staff:import-job", args=[job.pk]))
    text = first.content.decode()
    assert "3 problems to correct" in text and "nothing was written" in text
    assert text.count("date of birth 13/31/1980 is not a date (use YYYY-MM-DD)") == 2
    assert "Apply the import" not in text
    viewed = AuditEvent.objects.filter(action="view", object_type="interop_csv.importjob").get()
    assert (viewed.actor, viewed.object_id, viewed.detail["problems"]) == (
        admin.user,
        str(job.pk),
        2,
    )
    second = admin.get(reverse("staff:import-job", args=[job.pk]) + first.context["next_url"])
    assert len(second.context["problems"]) == 1 and second.context["problems"][0].row == 4
    assert not (jobs.upload_dir() / job.stored_as).exists()  # a refused file is not kept
    refused = admin.post(reverse("staff:import-apply", args=[job.pk]), follow=True)
    assert b"cannot be applied" in refused.content and Patient.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Jos\u00e9,L\u00f3pez".encode("latin-1"), "The file is not UTF-8 text"),
        (b"name;surname\nA;B\n", "separated by semicolons"),
        (b"id,name\n1,A\n", "Column &#x27;id&#x27; is not a column of a patients file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is not a CSV text file"),
    ],
)
def test_a_malformed_file_gets_its_reason(admin, data, message, django_capture_on_commit_callbacks):
    upload(admin, data, capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    assert job.status == "rejected"
    assert message in admin.get(reverse("staff:import-job", args=[job.pk])).content.decode()


def test_an_oversize_file_is_refused_with_the_limit(
    admin, settings, django_capture_on_commit_callbacks
):
    settings.CAREBELL_IMPORT_MAX_BYTES = 1024
    response = upload(admin, family_rows() * 20, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert "the largest taken is 1 KB. Split it into smaller files." in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_a_body_far_over_the_limit_is_refused_before_it_is_kept(admin, settings):
    settings.CAREBELL_IMPORT_MAX_BYTES = 1024
    file = SimpleUploadedFile("big.csv", b"x" * 200_000, content_type="text/csv")
    response = admin.post(reverse("staff:import"), {"kind": "patients", "file": file})
    assert response.status_code == 413 and b"larger than 1 KB" in response.content
    assert ImportJob.objects.count() == 0


@pytest.mark.parametrize("role", [FRONT_DESK, PHARMACY_STAFF, READ_ONLY])
def test_staff_without_import_data_are_refused(
    staff_of, role, admin, django_capture_on_commit_callbacks
):
    upload(admin, family_rows(), capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    client = staff_of(role)
    for url in (reverse("staff:import"), reverse("staff:import-job", args=[job.pk]),
                reverse("staff:import-progress", args=[job.pk]),
                reverse("staff:import-template", args=["patients"])):  # fmt: skip
        assert client.get(url).status_code == 403
    assert client.post(reverse("staff:import-apply", args=[job.pk])).status_code == 403
    assert b"staff/import/" not in client.get(reverse("staff:home")).content.replace(
        b"staff/import/template", b""
    )


def test_the_header_links_the_import_page_for_those_who_may(admin, staff_of):
    assert reverse("staff:import").encode() in admin.get(reverse("staff:home")).content
    assert (
        reverse("staff:import").encode()
        not in staff_of(FRONT_DESK).get(reverse("staff:home")).content
    )


def test_another_sites_import_is_not_found(admin, outsider, django_capture_on_commit_callbacks):
    upload(admin, family_rows(), capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    for url in (reverse("staff:import-job", args=[job.pk]),
                reverse("staff:import-progress", args=[job.pk])):  # fmt: skip
        assert outsider.get(url).status_code == 404
    assert outsider.post(reverse("staff:import-apply", args=[job.pk])).status_code == 404
    assert job.file_name not in outsider.get(reverse("staff:import")).content.decode()
    assert Patient.objects.count() == 0


def test_the_progress_answers_json(admin, django_capture_on_commit_callbacks):
    upload(admin, family_rows(), capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    answer = admin.get(reverse("staff:import-progress", args=[job.pk])).json()
    assert answer == {"status": "checked", "running": False, "rows": 3, "percent": 100}


def test_each_kind_has_a_downloadable_template(admin):
    response = admin.get(reverse("staff:import-template", args=["appointments"]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "carebell-appointments.csv" in response["Content-Disposition"]
    header = response.content.decode().splitlines()[0]
    assert header.startswith("appointment_id,patient_id,starts_at,duration_minutes")
    assert admin.get(reverse("staff:import-template", args=["visits"])).status_code == 404


def test_an_apply_a_dead_process_left_is_marked_and_may_be_applied_again(
    admin, django_capture_on_commit_callbacks
):
    import datetime as dt

    from django.utils import timezone

    upload(admin, family_rows(), capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(
        status="applying", heartbeat_at=timezone.now() - dt.timedelta(minutes=6)
    )
    page = admin.get(reverse("staff:import-job", args=[job.pk])).content.decode()
    assert "stopped before it finished" in page and "Apply the import" in page
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(reverse("staff:import-apply", args=[job.pk]))
    assert ImportJob.objects.get().status == "done" and Patient.objects.count() == 2


def test_the_appointments_upload_says_which_patients_are_missing(
    admin, django_capture_on_commit_callbacks
):
    data = csv_bytes(
        ["appointment_id", "patient_id", "starts_at"], ["A1", "P404", "2026-12-03 09:30"]
    )
    upload(admin, data, kind="appointments", capture=django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    page = admin.get(reverse("staff:import-job", args=[job.pk])).content.decode()
    assert "patient P404 is not a patient of this site: import the patients file first" in page
    assert Appointment.objects.count() == 0
