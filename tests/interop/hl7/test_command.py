"""`carebell hl7 import` and `carebell hl7 purge`."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
import zipfile

import pytest
from django.core.management import call_command
from django.utils import timezone

from carebell.appointments.models import Appointment
from carebell.interop.hl7.batch import split_batch
from carebell.interop.hl7.demo import ensure_demo_senders
from carebell.interop.hl7.models import Hl7Message, Hl7Sender
from carebell.people.models import Patient
from tests.interop.hl7.samples import VECTORS, siu, vector

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("hl7", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exit:
        return out.getvalue(), exit.code
    return out.getvalue(), 0


def batch_file(tmp_path, name="batch.hl7") -> str:
    body = b"FHS|^~\\&|PMS\nBHS|^~\\&|PMS\n" + siu(control="B1", appt="A1").replace(b"\r", b"\n")
    body += siu(control="B2", appt="A2").replace(b"\r", b"\r\n") + b"BTS|2\nFTS|1\n"
    path = tmp_path / name
    path.write_bytes(body)
    return str(path)


def test_a_batch_file_with_envelopes_is_split_into_its_messages():
    data = b"FHS|^~\\&\rBHS|^~\\&\r" + siu(control="B1") + siu(control="B2") + b"BTS|2\rFTS|1\r"
    assert [m.split(b"|")[9] for m in split_batch(data)] == [b"B1", b"B2"]


def test_import_reports_every_message_and_applies_them(clinic, tmp_path):
    out, code = run("import", batch_file(tmp_path))
    assert code == 0
    assert "batch.hl7#1: SIU^S12 B1 AA applied" in out
    assert "batch.hl7#2: SIU^S12 B2 AA applied" in out
    assert "2 messages imported; 0 with AE/AR." in out
    assert set(Appointment.objects.values_list("external_id", flat=True)) == {"A1", "A2"}


def test_a_dry_run_writes_nothing(clinic, tmp_path):
    out, code = run("import", "--dry-run", "--json", batch_file(tmp_path))
    report = json.loads(out)
    assert code == 0 and [r["outcome"] for r in report] == ["checked", "checked"]
    assert not Patient.objects.exists() and not Hl7Message.objects.exists()


def test_a_dry_run_reports_what_would_fail(site, tmp_path):
    out, code = run("import", "--dry-run", "--json", batch_file(tmp_path))
    assert code == 1
    assert {r["ack"] for r in json.loads(out)} == {"AR"}  # no site for this sender
    assert not Hl7Sender.objects.exists()


def test_archives_are_read(clinic, tmp_path):
    zipped = tmp_path / "feed.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("day1/one.hl7", siu(control="Z1", appt="Z1"))
    tarred = tmp_path / "feed.tar.gz"
    with tarfile.open(tarred, "w:gz") as archive:
        data = siu(control="T1", appt="T1")
        info = tarfile.TarInfo("two.hl7")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    out, code = run("import", str(zipped), str(tarred))
    assert code == 0, out
    assert "feed.zip:day1/one.hl7#1: SIU^S12 Z1 AA" in out and "feed.tar.gz:two.hl7#1" in out
    assert Appointment.objects.count() == 2


def test_a_file_that_is_not_hl7_is_reported_and_kept(clinic):
    out, code = run("import", str(VECTORS / "SOURCES.md"))
    assert code == 1 and "AR rejected — The message does not start with an MSH" in out
    assert Hl7Message.objects.get().outcome == "rejected"


def test_a_missing_file_is_reported(clinic, tmp_path):
    out, code = run("import", str(tmp_path / "nope.hl7"))
    assert code == 1 and "nope.hl7: unreadable" in out


def test_the_shared_samples_into_the_demo_sites(org, site, pharmacy):
    ensure_demo_senders(site, pharmacy)
    out, code = run("import", *[str(p) for p in sorted(VECTORS.glob("*.hl7"))])
    assert code == 0, out
    assert "15 messages imported; 0 with AE/AR." in out
    assert Appointment.objects.filter(site=site).count() == 4
    assert pharmacy.prescriptions.count() == 2


def test_with_site_a_new_sender_is_set_up_for_it(site, tmp_path):
    _, code = run("import", "--site", str(site.pk), batch_file(tmp_path))
    assert code == 0
    assert Hl7Sender.objects.get().site == site


def test_purge_deletes_messages_past_the_retention_period(clinic, settings):
    settings.HL7_RETENTION_DAYS = 30
    from carebell.interop.hl7.receive import receive

    receive(siu(control="OLD"), via="file")
    receive(vector("siu_s12_fhirconverter_01.hl7"), via="file")
    Hl7Message.objects.filter(control_id="OLD").update(
        received_at=timezone.now() - dt.timedelta(days=31)
    )
    out, _ = run("purge", "--dry-run")
    assert "1 messages received before" in out and Hl7Message.objects.count() == 2
    run("purge")
    assert list(Hl7Message.objects.values_list("control_id", flat=True)) == ["MSG00012"]
