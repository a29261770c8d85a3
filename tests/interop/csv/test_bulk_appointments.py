"""save_appointments, the bulk way in: the same outbox as save_appointment one by
one, for new appointments and for every kind of change; validation before anything
is written; one audit entry per change."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from carebell.appointments.actions import save_appointment, save_appointments
from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import OutboxMessage
from carebell.planning import replan
from tests import factories
from tests.messaging.engine_setup import NOW, enable

pytestmark = pytest.mark.django_db


@pytest.fixture
def patients(site):
    enable(site, Kind.APPT_REMINDER, offsets=[{"days": 1}, {"hours": 2}])
    enable(site, Kind.APPT_CONFIRMATION)
    found = []
    for n in range(4):
        patient = factories.make_patient(site, external_id=f"P{n}")
        contact = factories.make_contact(patient, relationship="self", first_name="Pat")
        factories.add_point(contact, ContactPointKind.MOBILE, f"+1202555014{n}")
        factories.add_point(contact, ContactPointKind.EMAIL, f"p{n}@example.org")
        factories.set_preference(contact, "reminders", "email+sms" if n % 2 else "sms")
        found.append(patient)
    return found


def appointment(site, patient, external_id: str, days: float, **fields) -> Appointment:
    return Appointment(site=site, patient=patient, source="csv", external_id=external_id,
                       starts_at=NOW + dt.timedelta(days=days), **fields)  # fmt: skip


def outbox() -> set[tuple]:
    """The outbox as a person reads it: appointments by their external id."""
    ext = dict(Appointment.objects.values_list("pk", "external_id"))
    return {
        (m.kind, m.channel, m.to_address, m.status, m.planned_at, m.event_at, ext.get(m.entity_id),
         tuple(sorted(ext[i] for i in m.entity_ids)), tuple(r["code"] for r in m.reasons))
        for m in OutboxMessage.objects.all()
    }  # fmt: skip


def both_ways(make) -> tuple[set, set]:
    """The outbox after saving `make()`'s appointments one by one, and in bulk, each
    from the same start (the first is rolled back)."""
    results = []
    for bulk in (False, True):
        with transaction.atomic():
            batch = make()
            if bulk:
                save_appointments(batch, source="csv", now=NOW)
            else:
                for a in batch:
                    save_appointment(_as_stored(a), source="csv", now=NOW)
            results.append(outbox())
            transaction.set_rollback(True)
    return results[0], results[1]


def _as_stored(a: Appointment) -> Appointment:
    """The single path saves by pk: an upsert finds the stored row first."""
    stored = Appointment.objects.filter(site=a.site, source=a.source, external_id=a.external_id)
    a.pk = stored.values_list("pk", flat=True).first()
    if a.pk:
        a.created_at, a._state.adding = stored.get().created_at, False
    return a


def test_new_appointments_plan_the_same_outbox_both_ways(site, patients):
    def make():
        return [appointment(site, p, f"A{n}", 2 + n) for n, p in enumerate(patients)]

    single, bulk = both_ways(make)
    assert single == bulk
    assert len(bulk) >= 8  # confirmations and reminders, texts and emails


def test_every_kind_of_change_replans_the_same_both_ways(site, patients):
    for n, p in enumerate(patients):
        save_appointment(appointment(site, p, f"A{n}", 2 + n, location_code="MAIN"), now=NOW)
    assert OutboxMessage.objects.filter(status="scheduled").exists()

    def make():
        moved, cancelled, relocated, same = (
            appointment(site, patients[0], "A0", 5, location_code="MAIN"),
            appointment(site, patients[1], "A1", 3, location_code="MAIN", status="cancelled"),
            appointment(site, patients[2], "A2", 4, location_code="NORTH"),
            appointment(site, patients[3], "A3", 5, location_code="MAIN"),
        )
        return [moved, cancelled, relocated, same, appointment(site, patients[3], "A9", 9)]

    single, bulk = both_ways(make)
    assert single == bulk
    statuses = {(row[6], row[3]) for row in bulk}
    assert ("A0", "cancelled") in statuses and ("A1", "cancelled") in statuses
    assert ("A9", "scheduled") in statuses


def test_an_unchanged_appointment_is_neither_written_nor_audited(site, patients):
    save_appointments([appointment(site, patients[0], "A0", 2)], source="csv", now=NOW)
    before = AuditEvent.objects.count()
    saved = save_appointments([appointment(site, patients[0], "A0", 2)], source="csv", now=NOW)
    assert saved == (0, 0, 1) and AuditEvent.objects.count() == before


def test_each_change_is_audited_with_its_fields(site, patients):
    user = factories.make_staff(site, "System Administrator", username="dana")
    save_appointments([appointment(site, patients[0], "A0", 2)], by=user, now=NOW)
    save_appointments([appointment(site, patients[0], "A0", 3)], by=user, now=NOW)
    create, change = AuditEvent.objects.filter(object_type="appointments.appointment").order_by(
        "id"
    )
    assert (create.action, create.actor, "starts_at" in create.detail["fields"]) == (
        "create",
        user,
        True,
    )
    assert (change.action, change.detail) == ("change", {"fields": ["starts_at"]})


def test_nothing_is_written_when_one_appointment_is_not_valid(site, patients, other_org_site):
    stranger = factories.make_patient(other_org_site)
    for bad, message in [
        (appointment(site, patients[1], "A1", 2, status="maybe"), "A1"),
        (appointment(site, stranger, "A2", 2), "not a patient of this site"),
        (appointment(site, patients[0], "A0", 3), "appears twice"),
    ]:
        with pytest.raises(ValidationError, match=message):
            save_appointments([appointment(site, patients[0], "A0", 2), bad], now=NOW)
    assert Appointment.objects.count() == 0 and OutboxMessage.objects.count() == 0


def test_the_appointments_of_two_sites_are_refused_together(site, patients, other_org_site):
    other = factories.make_patient(other_org_site)
    with pytest.raises(ValueError, match="one site"):
        save_appointments([appointment(site, patients[0], "A0", 2),
                           appointment(other_org_site, other, "B0", 2)])  # fmt: skip


def test_siblings_imported_together_share_one_text(site):
    enable(site, Kind.APPT_REMINDER)
    kids = [factories.make_patient(site, external_id=f"K{n}") for n in range(2)]
    for kid in kids:
        parent = factories.make_contact(kid, first_name="Pat")
        factories.add_point(parent, ContactPointKind.MOBILE, "+12025550123")
        factories.set_preference(parent, "reminders", "sms")
    batch = [
        appointment(
            site,
            kid,
            f"A{n}",
            3,
        )
        for n, kid in enumerate(kids)
    ]
    save_appointments(batch, source="csv", now=NOW)
    [text] = OutboxMessage.objects.filter(status="scheduled")
    assert sorted(text.entity_ids) == sorted(a.pk for a in batch)


def test_texts_kept_apart_by_the_sms_caps_over_many_days_are_the_same_both_ways(site, patients):
    # One ledger of the SMS caps serves every day of a batch: day after day it must
    # answer as the outbox that save_appointment reads each time.
    def make():
        days = (1.2, 2.1, 2.6, 3.3, 4.4, 5.5, 6.1, 9.0, 9.4)
        return [appointment(site, patients[n % 2], f"A{n}", d) for n, d in enumerate(days)]

    single, bulk = both_ways(make)
    assert single == bulk
    codes = {code for row in bulk for code in row[8]}
    assert "cap_daily" in codes or "cap_weekly" in codes  # the caps had work to do


def test_a_day_whose_messages_the_outbox_holds_already_is_the_same_both_ways(
    site, patients, monkeypatch
):
    # A patient's stored appointment on a day of the batch is planned again with it
    # (apart: the site does not combine); its keys are in the outbox already, so the
    # ledger of the SMS caps reads the patient's texts again on the next day.
    site.delivery.combine_siblings = False
    site.delivery.save()
    save_appointment(appointment(site, patients[0], "A0", 3), source="csv", now=NOW)
    reads = _noted_reads(monkeypatch)

    def make():
        reads.clear()
        return [appointment(site, patients[0], "A1", 3.1), appointment(site, patients[0], "A2", 4)]

    single, bulk = both_ways(make)
    assert single == bulk, (sorted(single - bulk), sorted(bulk - single))
    assert reads == [[patients[0].pk], [patients[0].pk]]  # bulk: day 3, then day 4 again


def test_the_sms_caps_ledger_reads_each_patient_on_their_first_day_once(
    site, patients, monkeypatch
):
    # The ledger holds the patients of the days in flight: each is read when first
    # planned (not all at the start of the batch) and kept to their last day, so the
    # caps still count their earlier days' texts.
    reads = _noted_reads(monkeypatch)
    days = [(0, 1.2), (1, 2.1), (0, 2.6), (2, 5.3), (0, 6.1), (1, 9.0)]

    def make():
        reads.clear()
        return [appointment(site, patients[p], f"A{n}", d) for n, (p, d) in enumerate(days)]

    single, bulk = both_ways(make)
    assert single == bulk, (sorted(single - bulk), sorted(bulk - single))
    assert reads == [[patients[0].pk], [patients[1].pk], [patients[2].pk]]


def _noted_reads(monkeypatch) -> list[list[int]]:
    """The patient ids of each read of the outbox's texts for the SMS caps ledger: by
    the ledger itself, or by the statement it gives a replan to send with its own."""
    from carebell.planning import sms_caps

    reads, read, read_for = [], sms_caps._history_rows, sms_caps.SmsCaps.read_for

    def noted(params, ids):
        if ids:
            reads.append(list(ids))
        return read(params, ids)

    def noted_statement(caps, patient_ids):
        statement = read_for(caps, patient_ids)
        if statement is not None:  # its ids, as the array text the statement binds
            reads.append([int(i) for i in statement[1][0].strip("{}").split(",")])
        return statement

    monkeypatch.setattr(sms_caps, "_history_rows", noted)
    monkeypatch.setattr(sms_caps.SmsCaps, "read_for", noted_statement)
    return reads


def test_a_batch_past_the_copy_threshold_is_stored_and_audited_as_a_small_one(site, patients):
    # On PostgreSQL, from sql.COPY_FROM rows on, the appointments and their audit
    # entries go in by COPY: every column as the ORM stores it, ids set on each.
    from carebell.sql import COPY_FROM

    user = factories.make_staff(site, "System Administrator", username="dana")
    batch = [
        appointment(site, patients[n % 4], f"A{n}", 1 + n / 50, location_name="Main ✓",
                    confirmed_at=NOW if n % 3 == 0 else None)
        for n in range(COPY_FROM + 5)
    ]  # fmt: skip
    with transaction.atomic(), replan.once_at_end():  # as an import writes a batch
        assert save_appointments(batch, by=user, source="csv", now=NOW) == (len(batch), 0, 0)
    assert all(a.pk is not None and not a._state.adding for a in batch)
    fields = [f.attname for f in Appointment._meta.concrete_fields]
    stored = {a.pk: a for a in Appointment.objects.filter(site=site)}
    assert {a.pk: [getattr(a, f) for f in fields] for a in batch} == {
        pk: [getattr(a, f) for f in fields] for pk, a in stored.items()
    }
    entries = AuditEvent.objects.filter(object_type="appointments.appointment")
    assert sorted(int(e.object_id) for e in entries) == sorted(stored)
    entry = entries.first()
    assert (entry.action, entry.actor, entry.site_id, entry.at) == ("create", user, site.pk, NOW)
    assert "starts_at" in entry.detail["fields"] and "system" not in entry.detail
    assert OutboxMessage.objects.filter(status="scheduled").exists()


@pytest.mark.parametrize("by_staff", [True, False])
def test_record_saves_writes_the_entries_record_save_writes_one_by_one(site, patients, by_staff):
    from carebell.audit import trail

    by = factories.make_staff(site, "System Administrator", username="dana") if by_staff else None
    a = save_appointment(appointment(site, patients[0], "A0", 2), now=NOW)
    before = Appointment.objects.get(pk=a.pk)
    a.starts_at, a.status = a.starts_at + dt.timedelta(hours=1), "confirmed"
    pairs = [(a, before), (before, None)]
    columns = [f.attname for f in AuditEvent._meta.concrete_fields if f.attname != "id"]
    written = []
    for bulk in (False, True):
        with transaction.atomic():
            first = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
            if bulk:
                trail.record_saves(by, "csv", pairs, NOW, site_id=site.pk)
            else:
                for obj, previous in pairs:
                    trail.record_save(by, "csv", obj, previous, NOW, site_id=site.pk)
            rows = AuditEvent.objects.filter(id__gt=first).order_by("id")
            written.append(list(rows.values_list(*columns)))
            transaction.set_rollback(True)
    assert written[0] == written[1] and len(written[1]) == 2
