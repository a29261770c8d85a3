"""Importing through the entry points: upsert by external id, a dry run that writes
nothing, all or nothing, replanning, audit with the importer as actor."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.core.vocab import Kind
from carebell.interop.csv import ingest
from carebell.messaging.models import OutboxMessage
from carebell.people.models import ConsentRecord, Contact, ContactPoint, ContactPreference, Patient
from carebell.pharmacy.models import Fill, Prescription
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories
from tests.interop.csv.conftest import PATIENTS, csv_bytes, family_rows
from tests.messaging.engine_setup import enable

pytestmark = pytest.mark.django_db

APPOINTMENTS = ["appointment_id", "patient_id", "starts_at", "location_code", "status"]


def counts():
    return {
        model.__name__: model.objects.count()
        for model in (Patient, Contact, ContactPoint, ContactPreference, Appointment,
                      Prescription, Fill, OutboxMessage, AuditEvent, ConsentRecord)
    }  # fmt: skip


def test_a_patients_file_makes_patients_contacts_points_and_preferences(run, site):
    report, problems = run("patients", family_rows())
    assert problems == [] and report.applied
    assert (report.rows, report.created, report.changed, report.unchanged) == (3, 3, 0, 0)
    ana = Patient.objects.get(site=site, source="csv", external_id="P1")
    assert (ana.first_name, ana.birth_date) == ("Ana", dt.date(2019, 4, 30))
    mother, father = ana.contacts.order_by("position")
    assert (mother.relationship, mother.first_name, father.first_name) == (
        "mother",
        "Maria",
        "Jorge",
    )
    assert mother.points.get(kind="mobile").value == "+12025550123"
    assert mother.points.get(kind="mobile").raw_value == "(202) 555-0123"
    assert mother.points.get(kind="email").value == "maria@example.org"
    assert mother.preferences.get(category="reminders").value == "sms"
    assert father.preferences.get(category="reminders").value == "email"
    ben = Patient.objects.get(external_id="P2").contacts.get()
    assert (ben.relationship, ben.first_name, ben.last_name) == ("self", "Ben", "Ng")


def test_every_change_is_audited_with_the_import_as_actor(run, site):
    run("patients", family_rows())
    events = AuditEvent.objects.filter(site_id=site.pk, object_type="people.patient")
    assert events.count() == 2
    assert {e.actor_label for e in events} == {"csv"}
    assert all(e.detail["system"] == "csv" and "first_name" in e.detail["fields"] for e in events)
    assert AuditEvent.objects.filter(object_type="people.contactpoint").count() == 3


def test_the_importing_staff_member_is_the_actor_when_given(run, site):
    user = factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")
    run("patients", family_rows(), by=user)
    event = AuditEvent.objects.filter(object_type="people.patient").first()
    assert (event.actor, event.actor_label) == (user, "dana")


def test_a_dry_run_writes_nothing_and_says_what_it_would_do(run, site):
    before = counts()
    report, problems = run("patients", family_rows(), dry_run=True)
    assert problems == [] and not report.applied
    assert (report.created, report.changed, report.unchanged) == (3, 0, 0)
    assert counts() == before


def test_a_dry_run_reports_every_rows_problem(run, site):
    data = csv_bytes(
        PATIENTS,
        ["P1", "Ana", "Lopez", "13/31/1980", "1", "mother", "Maria", "L", "555-1234", "", ""],
        ["P2", "Ben", "Ng", "", "1", "self", "", "", "", "ben@", ""],
        ["P3", "Cy", "Oh", "", "1", "", "C", "Oh", "", "", ""],
        ["P4", "Di", "Ma", "", "1", "father", "", "", "", "", ""],
        ["P5", "Ed", "Ru", "", "1", "self", "", "", "", "", ""],
        ["P5", "Ed", "Ru", "", "1", "self", "", "", "", "", ""],
    )  # fmt: skip
    before = counts()
    report, problems = run("patients", data, dry_run=True)
    assert [(p.row, p.column, p.value) for p in problems] == [
        (2, "birth_date", "13/31/1980"),
        (2, "mobile", "555-1234"),
        (3, "email", "ben@"),
        (4, "relationship", ""),
        (5, "contact_first_name", ""),
        (5, "contact_last_name", ""),
        (7, "", ""),
    ]
    assert problems[1].reason == "mobile phone 555-1234 has no area code"
    assert (
        problems[3].reason == "relationship is missing: a new contact needs one (self, mother, …)"
    )
    assert problems[4].reason == "contact's first name is missing: a new contact needs one"
    assert problems[6].reason == "contact 1 of patient P5 is in the file twice (row 6 too)"
    assert report.problems == 7 and counts() == before


def test_one_bad_row_and_nothing_is_written(run, site, monkeypatch):
    monkeypatch.setattr(ingest, "BATCH", 2)  # the bad row in a later batch than good ones
    rows = [[f"P{n}", "Ana", "Lopez", "", "1", "self", "", "", f"+1202555{n:04d}", "", ""]
            for n in range(100, 106)]  # fmt: skip
    rows.append(["P9", "Bad", "Date", "1980-02-30", "", "", "", "", "", "", ""])
    before = counts()
    report, problems = run("patients", csv_bytes(PATIENTS, *rows))
    assert not report.applied and report.rows == 7
    assert problems[0].row == 8 and problems[0].column == "birth_date"
    assert (report.created, report.changed) == (0, 0)
    assert counts() == before


def test_a_second_import_of_the_same_file_changes_nothing(run, site):
    run("patients", family_rows())
    before = counts()
    report, problems = run("patients", family_rows())
    assert problems == [] and (report.created, report.changed, report.unchanged) == (0, 0, 3)
    assert counts() == before


def test_a_second_import_changes_only_what_changed(run, site):
    run("patients", family_rows())
    data = family_rows().replace(b"Maria", b"Mariana").replace(b"555 0144", b"555 0145")
    report, _ = run("patients", data)
    assert (report.created, report.changed, report.unchanged) == (0, 2, 1)
    contact_change = AuditEvent.objects.filter(object_type="people.contact", action="change").get()
    assert contact_change.detail["fields"] == ["first_name"]
    point = ContactPoint.objects.get(value="+12025550145")
    change = AuditEvent.objects.filter(object_type="people.contactpoint", action="change").get()
    assert change.object_id == str(point.pk) and "value" in change.detail["fields"]


def test_a_blank_cell_keeps_what_carebell_holds(run, site):
    run("patients", family_rows())
    data = csv_bytes(
        ["patient_id", "first_name", "last_name", "birth_date"], ["P1", "Ana", "Lopez", ""]
    )
    report, _ = run("patients", data)
    assert report.unchanged == 1
    assert Patient.objects.get(external_id="P1").birth_date == dt.date(2019, 4, 30)


def test_consent_columns_go_to_the_consent_ledger_once(run, site):
    data = csv_bytes(
        ["patient_id", "first_name", "last_name", "contact_position", "relationship", "mobile",
         "sms_consent", "consent_wording", "consent_wording_version"],
        ["P1", "Ana", "Lopez", "1", "self", "2025550123", "yes", "Texts are fine.", "paper-1"],
    )  # fmt: skip
    run("patients", data)
    record = ConsentRecord.objects.get()
    assert (record.channel, record.action, record.source) == ("sms", "grant", "import")
    assert (record.wording, record.wording_version, record.captured_by_system) == (
        "Texts are fine.", "paper-1", "csv",
    )  # fmt: skip
    assert ContactPoint.objects.get().consent_sms
    report, _ = run("patients", data)
    assert report.unchanged == 1 and ConsentRecord.objects.count() == 1


def test_consent_without_a_number_to_consent_for_is_a_problem(run, site):
    data = csv_bytes(
        ["patient_id", "first_name", "last_name", "contact_position", "relationship",
         "sms_consent"],
        ["P1", "Ana", "Lopez", "1", "self", "yes"],
    )  # fmt: skip
    _, problems = run("patients", data)
    assert problems[0].column == "sms_consent"
    assert (
        problems[0].reason
        == "sms consent needs a mobile phone for the contact (in this row or stored)"
    )


# Appointments ----------------------------------------------------------------------


def test_appointments_name_patients_of_the_site_only(run, site, other_org_site):
    run("patients", family_rows())
    run("patients", family_rows(), at=other_org_site)
    data = csv_bytes(APPOINTMENTS, ["A1", "P1", "2026-12-03 09:30", "", ""],
                     ["A2", "P7", "2026-12-03 09:45", "", ""],
                     ["A1", "P2", "2026-12-03 10:00", "", ""])  # fmt: skip
    report, problems = run("appointments", data)
    assert [(p.row, p.column, p.reason) for p in problems] == [
        (3, "patient_id",
         "patient P7 is not a patient of this site: import the patients file first"),
        (4, "", "appointment A1 is in the file twice (row 2 too)"),
    ]  # fmt: skip
    assert not report.applied and Appointment.objects.count() == 0


def test_imported_appointments_plan_their_reminders(run, site):
    enable(site, Kind.APPT_REMINDER)
    run("patients", family_rows())
    data = csv_bytes(APPOINTMENTS, ["A1", "P1", "2026-12-03 09:30", "MAIN", ""],
                     ["A2", "P2", "2026-12-04 11:00", "MAIN", "booked"])  # fmt: skip
    report, problems = run("appointments", data)
    assert problems == [] and report.created == 2
    a1 = Appointment.objects.get(external_id="A1")
    assert a1.starts_at == dt.datetime(2026, 12, 3, 14, 30, tzinfo=dt.UTC)
    planned = OutboxMessage.objects.filter(kind=Kind.APPT_REMINDER, status="scheduled")
    a2 = Appointment.objects.get(external_id="A2")
    assert sorted(planned.values_list("entity_id", "to_address")) == [
        (a1.pk, "+12025550123"),  # the mother's text; the father has no address yet
        (a2.pk, "+12025550144"),
    ]
    assert all(m.event_at in (a1.starts_at, a2.starts_at) for m in planned)


def test_a_moved_appointment_is_replanned_and_a_cancelled_one_loses_its_reminders(run, site):
    enable(site, Kind.APPT_REMINDER)
    run("patients", family_rows())
    run("appointments", csv_bytes(APPOINTMENTS, ["A1", "P1", "2026-12-03 09:30", "", ""],
                                  ["A2", "P2", "2026-12-04 11:00", "", ""]))  # fmt: skip
    first = OutboxMessage.objects.get(entity_id=Appointment.objects.get(external_id="A1").pk)
    report, _ = run("appointments", csv_bytes(
        APPOINTMENTS, ["A1", "P1", "2026-12-05 09:30", "", ""],
        ["A2", "P2", "2026-12-04 11:00", "", "cancelled"]))  # fmt: skip
    assert (report.changed, report.unchanged) == (2, 0)
    first.refresh_from_db()
    assert first.status == "cancelled" and first.reasons[0]["code"] == "appointment_moved"
    a1 = Appointment.objects.get(external_id="A1")
    moved = OutboxMessage.objects.get(entity_id=a1.pk, status="scheduled")
    assert moved.event_at == a1.starts_at
    a2 = Appointment.objects.get(external_id="A2")
    assert not OutboxMessage.objects.filter(entity_id=a2.pk, status="scheduled").exists()
    audit = AuditEvent.objects.filter(object_type="appointments.appointment", action="change")
    assert sorted(tuple(e.detail["fields"]) for e in audit) == [("starts_at",), ("status",)]


# Pharmacy --------------------------------------------------------------------------

RX = ["rx_number", "patient_id", "drug_name", "refills_authorized", "refills_remaining",
      "days_supply", "maintenance"]  # fmt: skip
FILLS = ["rx_number", "fill_number", "filled_on", "step", "step_at"]


def test_prescriptions_and_their_fills_are_imported_and_upserted(run, pharmacy):
    run("patients", family_rows(), at=pharmacy)
    report, problems = run("prescriptions", csv_bytes(
        RX, ["RX1", "P2", "Lisinopril 10 mg", "5", "4", "90", "yes"]), at=pharmacy)  # fmt: skip
    assert problems == [] and report.created == 1
    rx = Prescription.objects.get(rx_number="RX1", site=pharmacy)
    assert (rx.refills_authorized, rx.refills_remaining, rx.days_supply) == (5, 4, 90)
    report, problems = run("fills", csv_bytes(
        FILLS, ["RX1", "0", "2026-11-20", "ready", "2026-11-20 14:05"],
        ["RX9", "0", "2026-11-20", "", ""]), at=pharmacy)  # fmt: skip
    assert [p.reason for p in problems] == [
        "prescription RX9 is not a prescription of this site: import the prescriptions file first"
    ]
    report, problems = run("fills", csv_bytes(
        FILLS, ["RX1", "0", "2026-11-20", "ready", "2026-11-20 14:05"]), at=pharmacy)  # fmt: skip
    fill = Fill.objects.get()
    assert (fill.step, fill.days_supply) == ("ready", 90)
    assert fill.ready_at == dt.datetime(2026, 11, 20, 19, 5, tzinfo=dt.UTC)
    report, _ = run("fills", csv_bytes(FILLS, ["RX1", "0", "2026-11-20", "picked_up", ""]),
                    at=pharmacy)  # fmt: skip
    fill.refresh_from_db()
    assert report.changed == 1 and fill.step == "picked_up" and fill.picked_up_at is not None


def test_refills_remaining_is_checked_against_what_is_stored(run, pharmacy):
    run("patients", family_rows(), at=pharmacy)
    run("prescriptions", csv_bytes(RX, ["RX1", "P2", "X", "2", "1", "", ""]), at=pharmacy)
    data = csv_bytes(["rx_number", "patient_id", "drug_name", "refills_remaining",
                      "refills_authorized"],
                     ["RX1", "P2", "X", "", "0"])  # fmt: skip
    _, problems = run("prescriptions", data, at=pharmacy)
    assert problems[0].reason == "refills remaining 1 is more than the 0 authorised"
