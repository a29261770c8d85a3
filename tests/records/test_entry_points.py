"""The one way in for appointments, prescriptions and fills: every door (the staff
app, HL7, FHIR, CSV, the API) saves through these, so each change is validated,
replanned in its transaction and audited with its actor."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from carebell.appointments.actions import save_appointment
from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.core.vocab import Kind, OutboxStatus
from carebell.messaging.models import OutboxMessage
from carebell.pharmacy.actions import save_fill, save_prescription
from carebell.pharmacy.models import Prescription
from tests import factories
from tests.messaging.engine_setup import enable, family

pytestmark = pytest.mark.django_db


def test_a_new_appointment_is_planned_and_audited_with_its_feed(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, _parent, existing)] = family(site)
    existing.delete()
    appointment = Appointment(
        site=site,
        patient=child,
        source="hl7",
        external_id="SIU-1",
        starts_at=timezone.now() + dt.timedelta(days=5),
    )
    save_appointment(appointment, source="hl7")
    assert OutboxMessage.objects.filter(entity_id=appointment.id).count() == 1
    event = AuditEvent.objects.get(object_type="appointments.appointment")
    assert (event.action, event.actor_label) == ("create", "hl7")
    assert "starts_at" in event.detail["fields"]


def test_moving_an_appointment_replans_and_audits_only_the_changed_fields(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, _parent, existing)] = family(site)
    existing.delete()
    appointment = Appointment(
        site=site, patient=child, external_id="F-1", starts_at=timezone.now() + dt.timedelta(days=5)
    )
    save_appointment(appointment, source="fhir")
    first = OutboxMessage.objects.get(entity_id=appointment.id)
    appointment.starts_at += dt.timedelta(days=2)
    save_appointment(appointment, source="fhir")
    first.refresh_from_db()
    assert first.status == OutboxStatus.CANCELLED
    assert OutboxMessage.objects.filter(
        entity_id=appointment.id, status=OutboxStatus.SCHEDULED
    ).exists()
    change = AuditEvent.objects.get(action="change", object_type="appointments.appointment")
    assert change.detail["fields"] == ["starts_at"]


def test_an_invalid_appointment_changes_nothing(site):
    [(child, _parent, _appointment)] = family(site)
    bad = Appointment(
        site=site, patient=child, external_id="X", starts_at=timezone.now(), status="not-a-status"
    )
    with pytest.raises(ValidationError):
        save_appointment(bad, source="csv")
    assert not Appointment.objects.filter(external_id="X").exists()
    assert not AuditEvent.objects.exists()


def test_an_inactive_prescription_withdraws_its_pending_refill_reminders(pharmacy):
    patient = factories.make_patient(pharmacy)
    rx = factories.make_prescription(patient)
    message = OutboxMessage.objects.create(
        site=pharmacy,
        patient=patient,
        kind=Kind.REFILL_DUE,
        channel="sms",
        to_address="+12025550123",
        entity_type="prescription",
        entity_id=rx.id,
        planned_at=timezone.now() + dt.timedelta(days=1),
        created_at=timezone.now(),
        updated_at=timezone.now(),
        due_at=timezone.now() + dt.timedelta(days=1),
        status=OutboxStatus.SCHEDULED,
        dedupe_key=f"refill:{rx.id}",
    )
    rx.status = "inactive"
    save_prescription(rx, source="hl7")
    message.refresh_from_db()
    assert message.status == OutboxStatus.CANCELLED
    assert message.reasons[-1]["code"] == "rx_not_active"
    assert Prescription.objects.get(pk=rx.pk).status == "inactive"


def test_a_fill_picked_up_stops_its_ready_notice(pharmacy):
    patient = factories.make_patient(pharmacy)
    fill = factories.make_fill(
        factories.make_prescription(patient), step="ready", ready_at=timezone.now()
    )
    ready = OutboxMessage.objects.create(
        site=pharmacy,
        patient=patient,
        kind=Kind.RX_READY,
        channel="sms",
        to_address="+12025550123",
        entity_type="fill",
        entity_id=fill.id,
        planned_at=timezone.now() + dt.timedelta(hours=1),
        created_at=timezone.now(),
        updated_at=timezone.now(),
        due_at=timezone.now() + dt.timedelta(hours=1),
        status=OutboxStatus.SCHEDULED,
        dedupe_key=f"ready:{fill.id}",
    )
    fill.step, fill.picked_up_at = "picked_up", timezone.now()
    save_fill(fill, source="csv")
    ready.refresh_from_db()
    assert ready.status == OutboxStatus.CANCELLED
    assert AuditEvent.objects.filter(object_type="pharmacy.fill", action="change").exists()


def test_one_change_writes_its_audit_entries_in_one_insert_at_its_end(site):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from carebell.people.actions import save_contact, save_contact_point, save_patient
    from carebell.people.models import Contact, ContactPoint, Patient
    from carebell.planning import replan

    with CaptureQueriesContext(connection) as queries, replan.once_at_end():
        patient = save_patient(Patient(site=site, external_id="X-1", first_name="Ada",
                                       last_name="Byron"), source="hl7:test")  # fmt: skip
        contact = save_contact(Contact(patient=patient, position=1, relationship="self",
                                       first_name="Ada", last_name="Byron"),
                               source="hl7:test")  # fmt: skip
        save_contact_point(ContactPoint(contact=contact, kind="mobile", value="+12025550111",
                                        raw_value="2025550111"), source="hl7:test")  # fmt: skip
        assert not AuditEvent.objects.exists()  # not yet: at the end of the change
    inserts = [q for q in queries.captured_queries if 'INTO "audit_auditevent"' in q["sql"]]
    assert len(inserts) == 1
    events = AuditEvent.objects.order_by("id")
    assert [e.object_type for e in events] == [
        "people.patient", "people.contact", "people.contactpoint"
    ]  # fmt: skip
    assert {e.actor_label for e in events} == {"hl7:test"}


def test_a_change_that_fails_writes_no_audit_entry(site):
    from django.db import transaction

    from carebell.people.actions import save_patient
    from carebell.people.models import Patient
    from carebell.planning import replan

    with pytest.raises(RuntimeError), transaction.atomic(), replan.once_at_end():
        save_patient(Patient(site=site, external_id="X-2", first_name="Ada", last_name="B"))
        raise RuntimeError("the feed's next step failed")
    assert not AuditEvent.objects.exists()


def test_a_refused_save_leaves_the_callers_transaction_usable(site):
    from django.db import transaction

    from carebell.people.actions import save_contact

    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    bad = Appointment(site=site, patient=patient, external_id="B-1", status="lost",
                      starts_at=timezone.now())  # fmt: skip
    with transaction.atomic():
        with pytest.raises(ValidationError):
            save_appointment(bad, source="api")
        contact.authority = "sometimes"
        with pytest.raises(ValidationError):
            save_contact(contact, source="api")
        assert Appointment.objects.filter(external_id="B-1").count() == 0  # still usable


def test_a_new_appointment_is_written_by_one_insert_without_asking_for_its_key_first(site):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    patient = factories.make_patient(site)
    appointment = Appointment(site=site, patient=patient, source="api", external_id="K-1",
                              starts_at=timezone.now() + dt.timedelta(days=3))  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        save_appointment(appointment, source="api")
    reads = [q["sql"] for q in queries.captured_queries
             if 'FROM "appointments_appointment"' in q["sql"]]  # fmt: skip
    assert reads == []  # the key is the INSERT's to check
    stored = Appointment.objects.get(pk=appointment.pk)
    assert (stored.external_id, stored.created_at) == ("K-1", appointment.created_at)
    assert not appointment._state.adding


def test_a_taken_key_is_refused_as_full_clean_refuses_it_and_the_transaction_goes_on(site):
    from django.db import transaction

    patient = factories.make_patient(site)
    starts = timezone.now() + dt.timedelta(days=3)
    save_appointment(Appointment(site=site, patient=patient, source="api", external_id="K-2",
                                 starts_at=starts), source="api")  # fmt: skip
    again = Appointment(site=site, patient=patient, source="api", external_id="K-2",
                        starts_at=starts)  # fmt: skip
    with pytest.raises(ValidationError) as expected:
        again.full_clean()
    with transaction.atomic():
        with pytest.raises(ValidationError) as refused:
            save_appointment(again, source="api")
        assert Appointment.objects.filter(external_id="K-2").count() == 1  # still usable
    assert refused.value.message_dict == expected.value.message_dict
    assert again.pk is None and again._state.adding
    assert AuditEvent.objects.filter(action="create", object_type="appointments.appointment") \
        .count() == 1  # fmt: skip


def test_a_taken_key_and_a_bad_field_are_told_together_as_full_clean_tells_them(site):
    patient = factories.make_patient(site)
    starts = timezone.now() + dt.timedelta(days=3)
    save_appointment(Appointment(site=site, patient=patient, source="api", external_id="K-3",
                                 starts_at=starts), source="api")  # fmt: skip
    bad = Appointment(site=site, patient=patient, source="api", external_id="K-3",
                      starts_at=starts, status="lost")  # fmt: skip
    with pytest.raises(ValidationError) as expected:
        bad.full_clean()
    with pytest.raises(ValidationError) as refused:
        save_appointment(bad, source="api")
    assert refused.value.message_dict == expected.value.message_dict
    assert len(refused.value.message_dict) == 2  # the status and the key


def _written_by_insert():
    from carebell.interop.fhir.models import FhirIdentifier, FhirRecord
    from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient

    return [Appointment, Patient, Contact, ContactPoint, ContactPreference, FhirRecord,
            FhirIdentifier]  # fmt: skip


@pytest.mark.parametrize("model", _written_by_insert(), ids=lambda m: m.__name__)
def test_nothing_listens_to_a_row_the_entry_points_insert_themselves(model):
    # The entry points write a new one by prepared.insert, which sends no signal and
    # runs no save() of the model's own.
    from django.db.models import Model, signals

    for signal in (signals.pre_save, signals.post_save):
        assert not signal.has_listeners(model)
    assert model.save is Model.save


def test_a_block_inside_a_batch_that_fails_takes_its_entries_back(site):
    from carebell.audit import trail

    with trail.batched():
        trail.record(None, "view", site, detail={"system": "outer"})
        with pytest.raises(RuntimeError), trail.batched():
            trail.record(None, "change", site, detail={"system": "inner"})
            raise RuntimeError("undone")
        trail.record(None, "export", site, detail={"system": "outer"})
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "view", "export"
    ]  # fmt: skip


def test_a_statement_alongside_a_batch_runs_with_its_entries_unless_its_block_fails(site):
    from carebell.audit import trail
    from carebell.sites.models import Site

    rename = "UPDATE sites_site SET name = %s WHERE id = %s"
    with trail.batched():
        trail.record(None, "view", site, detail={"system": "outer"})
        trail.alongside(rename, ["Kept", site.pk])
        with pytest.raises(RuntimeError), trail.batched():
            trail.alongside(rename, ["Undone", site.pk])
            raise RuntimeError("undone")
        assert Site.objects.get(pk=site.pk).name == site.name  # not before the end
    assert Site.objects.get(pk=site.pk).name == "Kept"
    assert AuditEvent.objects.filter(action="view").count() == 1


def test_a_statement_alongside_no_batch_runs_at_once(site):
    from carebell.audit import trail
    from carebell.sites.models import Site

    trail.alongside("UPDATE sites_site SET name = %s WHERE id = %s", ["Now", site.pk])
    assert Site.objects.get(pk=site.pk).name == "Now"
