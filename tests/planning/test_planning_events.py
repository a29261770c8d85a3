"""Planning what pharmacy and greeting events announce at once: ready for pickup,
pickup confirmation, welcome."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell import outbox
from carebell.appointments import actions as appointment_actions
from carebell.core.reasons import Code
from carebell.core.vocab import ContactPointKind, FillStep, Kind, Relationship
from carebell.messaging.models import OutboxMessage
from carebell.people.models import Patient
from carebell.planning.runner import plan_once
from carebell.sites.models import DeliverySettings
from carebell.twoway import consent
from tests import factories
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def reachable(patient, category, preference="email+sms", *, consent=True, mobile=None):
    """The patient as their own contact, with a mobile number and an email address."""
    contact = factories.make_contact(
        patient, relationship=Relationship.SELF, first_name=patient.first_name
    )
    number = mobile or f"+1202555{patient.id % 10_000:04d}"
    factories.add_point(contact, ContactPointKind.MOBILE, number, consent_sms=consent)
    factories.add_point(contact, ContactPointKind.EMAIL, f"p{patient.id}@example.org")
    factories.set_preference(contact, category, preference)
    return contact


def ready_fill(patient, at=NOW - HOUR, step=FillStep.LABEL_PRINTED, **fields):
    """A fill of a new prescription whose label was printed at `at`."""
    rx = factories.make_prescription(patient, **fields.pop("rx", {}))
    fields = {"filled_on": at.date(), "step": step, "label_printed_at": at, **fields}
    return factories.make_fill(rx, **fields)


def run(now=NOW) -> list:
    decisions = []
    plan_once(now=now, on_decision=decisions.append)
    return decisions


def settings(site, **fields) -> None:
    DeliverySettings.objects.filter(site=site).update(**fields)


def test_a_ready_fill_is_announced_at_once_to_every_contact_point(pharmacy):
    rule = enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy, first_name="Ada", last_name="Lane")
    reachable(patient, "rx_ready")
    fill = ready_fill(patient)
    run()
    rows = OutboxMessage.objects.order_by("channel")
    assert [(m.channel, m.kind, m.planned_at) for m in rows] == [
        ("email", "rx_ready", NOW),
        ("sms", "rx_ready", NOW),
    ]
    message = rows[0]
    assert (message.entity_type, message.entity_id, message.entity_name) == (
        "fill",
        fill.id,
        "Ada Lane",
    )
    assert message.event_at == fill.label_printed_at and message.rule_id == rule.id
    assert message.dedupe_key.startswith(f"r{rule.id}:rx_ready:f{fill.id}:email:")


def test_announcing_again_stores_nothing_new(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready")
    ready_fill(patient)
    run()
    run(NOW + HOUR)
    assert OutboxMessage.objects.count() == 2


def test_fills_ready_the_same_day_share_one_message(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "sms")
    fills = [ready_fill(patient, NOW - 2 * HOUR), ready_fill(patient, NOW - HOUR)]
    decisions = run()
    message = OutboxMessage.objects.get()
    assert message.entity_ids == [f.id for f in fills]
    assert {s.entity_id for s in message.subjects.all()} == {f.id for f in fills}
    [planned] = [d for d in decisions if d.planned]
    assert Code.COMBINED_SAME_DAY in {r.code for r in planned.reasons}


def test_a_fill_ready_later_gets_its_own_message_without_repeating_the_first(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "sms")
    first = ready_fill(patient, NOW - HOUR)
    run()
    second = ready_fill(patient, NOW + HOUR)
    run(NOW + 2 * HOUR)
    assert sorted(OutboxMessage.objects.values_list("entity_id", "entity_ids")) == [
        (first.id, []),
        (second.id, []),
    ]


def test_a_fill_ready_at_night_waits_for_the_morning_window(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "sms")
    night = dt.datetime(2026, 11, 25, 23, 30, tzinfo=pharmacy.zone)
    ready_fill(patient, night)
    run(night + dt.timedelta(minutes=1))
    message = OutboxMessage.objects.get()
    assert message.planned_at == dt.datetime(2026, 11, 26, 8, 0, tzinfo=pharmacy.zone)


def test_a_fill_before_the_trigger_step_is_not_announced(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready")
    ready_fill(
        patient, step=FillStep.INSURANCE_APPROVED, label_printed_at=None,
        insurance_approved_at=NOW - HOUR,
    )  # fmt: skip
    run()
    assert OutboxMessage.objects.count() == 0


def test_the_site_may_announce_at_insurance_approval(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    settings(pharmacy, ready_trigger="insurance_approved")
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "email")
    ready_fill(
        patient, step=FillStep.INSURANCE_APPROVED, label_printed_at=None,
        insurance_approved_at=NOW - HOUR,
    )  # fmt: skip
    run()
    assert OutboxMessage.objects.get().kind == "rx_ready"


def test_a_picked_up_fill_is_not_announced_as_ready(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready")
    ready_fill(patient, step=FillStep.PICKED_UP, picked_up_at=NOW - HOUR / 2)
    run()
    assert OutboxMessage.objects.count() == 0


def test_a_fill_ready_days_ago_is_not_announced_when_the_rule_is_enabled(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready")
    ready_fill(patient, NOW - 5 * DAY)
    run()
    assert OutboxMessage.objects.count() == 0


def test_sms_without_consent_is_skipped_when_the_site_requires_opt_in(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    contact = reachable(patient, "rx_ready", "sms", consent=False)
    ready_fill(patient)
    decisions = run()
    assert OutboxMessage.objects.count() == 0
    [skipped] = [d for d in decisions if d.kind == "rx_ready"]
    assert skipped.status == "skipped" and skipped.contact_id == contact.id
    assert [r.code for r in skipped.reasons] == [Code.NO_CONSENT]


def test_every_eligible_contact_is_told_and_a_shared_phone_once(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "sms", mobile="+12025550150")
    reachable(patient, "rx_ready", "sms", mobile="+12025550150")
    reachable(patient, "rx_ready", "sms", mobile="+12025550151")
    ready_fill(patient)
    decisions = run()
    assert sorted(OutboxMessage.objects.values_list("to_address", flat=True)) == [
        "+12025550150",
        "+12025550151",
    ]
    codes = {r.code for d in decisions if not d.planned for r in d.reasons}
    assert Code.DUPLICATE_CONTACT_POINT in codes


def test_a_pickup_is_confirmed_when_the_site_sends_confirmations(pharmacy):
    enable(pharmacy, Kind.RX_PICKUP_CONFIRMATION)
    settings(pharmacy, pickup_confirmation_channels=["email"])
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready")
    fill = ready_fill(patient, NOW - DAY, step=FillStep.PICKED_UP, picked_up_at=NOW - HOUR)
    run()
    run(NOW + HOUR)
    message = OutboxMessage.objects.get()
    assert (message.kind, message.channel, message.entity_id) == (
        "rx_pickup_confirmation",
        "email",
        fill.id,
    )
    assert message.planned_at == NOW and message.event_at == fill.picked_up_at


def test_pickup_confirmations_are_off_without_site_channels(pharmacy):
    enable(pharmacy, Kind.RX_PICKUP_CONFIRMATION)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready")
    ready_fill(patient, NOW - DAY, step=FillStep.PICKED_UP, picked_up_at=NOW - HOUR)
    decisions = run()
    assert OutboxMessage.objects.count() == 0
    assert [r.code for d in decisions for r in d.reasons] == [Code.KIND_DISABLED]


def test_a_new_patient_is_welcomed_and_an_old_one_is_not(pharmacy):
    enable(pharmacy, Kind.WELCOME)
    new = factories.make_patient(pharmacy)
    old = factories.make_patient(pharmacy)
    for patient in (new, old):
        reachable(patient, "welcome", "email")
    Patient.objects.filter(id=new.id).update(created_at=NOW - HOUR)
    Patient.objects.filter(id=old.id).update(created_at=NOW - 30 * DAY)
    run()
    run(NOW + HOUR)
    message = OutboxMessage.objects.get()
    assert (message.kind, message.entity_type, message.entity_id) == ("welcome", "patient", new.id)
    assert message.planned_at == NOW


def test_a_site_that_welcomes_on_consent_waits_for_the_consent(pharmacy):
    enable(pharmacy, Kind.WELCOME)
    settings(pharmacy, welcome_on_consent=True)
    waiting = factories.make_patient(pharmacy)
    consented = factories.make_patient(pharmacy)
    for patient in (waiting, consented):
        reachable(patient, "welcome", "email")
    Patient.objects.update(created_at=NOW - HOUR)
    Patient.objects.filter(id=consented.id).update(consented_at=NOW - HOUR)
    run()
    assert OutboxMessage.objects.get().entity_id == consented.id


# Opting in again: what STOP blocked is planned afresh ------------------------------------

NUMBER = "+12025550123"


def planned_reminder(site):
    """A clinic family whose reminder is in the outbox, scheduled."""
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, _parent, appointment)] = family(site)
    appointment_actions.appointment_saved(appointment, None, now=NOW)
    return appointment


def stop_then_start(site, at=NOW):
    consent.opt_out_address(site.id, NUMBER, "sms", source="keyword", now=at)
    consent.opt_in_address(site.id, NUMBER, "sms", source="keyword", now=at + HOUR)


def test_start_after_stop_plans_the_blocked_reminder_again(site):
    appointment = planned_reminder(site)
    stop_then_start(site)
    blocked, fresh = OutboxMessage.objects.order_by("id")
    assert (blocked.status, blocked.block_reason) == ("blocked", "opted_out")
    assert (fresh.status, fresh.entity_id, fresh.to_address) == (
        "scheduled",
        appointment.id,
        NUMBER,
    )
    assert fresh.planned_at == blocked.planned_at


def test_start_after_stop_twice_plans_nothing_twice(site):
    planned_reminder(site)
    stop_then_start(site)
    stop_then_start(site, NOW + 2 * HOUR)
    plan_once(now=NOW + 4 * HOUR)
    statuses = sorted(OutboxMessage.objects.values_list("status", flat=True))
    assert statuses == ["blocked", "blocked", "scheduled"]


def test_a_number_still_opted_out_is_not_planned_again_by_the_sweep(site):
    planned_reminder(site)
    consent.opt_out_address(site.id, NUMBER, "sms", source="keyword", now=NOW)
    plan_once(now=NOW + HOUR)
    assert list(OutboxMessage.objects.values_list("status", flat=True)) == ["blocked"]


def test_a_reminder_deleted_by_staff_stays_deleted_after_start(site):
    planned_reminder(site)
    message = OutboxMessage.objects.get()
    outbox.cancel_messages([message.id], [], NOW)
    stop_then_start(site)
    plan_once(now=NOW + 2 * HOUR)
    assert list(OutboxMessage.objects.values_list("status", flat=True)) == ["cancelled"]


def test_a_reminder_survives_a_change_of_location_alone(site):
    from carebell.appointments.models import Appointment

    appointment = planned_reminder(site)
    previous = Appointment.objects.get(id=appointment.id)
    appointment.location_code = "annex"
    appointment.save()
    appointment_actions.appointment_saved(appointment, previous, now=NOW)
    assert sorted(OutboxMessage.objects.values_list("status", flat=True)) == [
        "cancelled",
        "scheduled",
    ]
