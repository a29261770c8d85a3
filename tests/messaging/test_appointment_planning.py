"""Planning appointment messages: who, when, once, and replanned on change."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.core.reasons import Code, reason
from carebell.core.vocab import Kind, OutboxStatus
from carebell.messaging import actions
from carebell.messaging.models import OutboxMessage
from carebell.messaging.planning.appointments import plan_site_appointments
from carebell.messaging.planning.writer import OutboxWriter
from carebell.messaging.policies import PolicyCache
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db


def plan(site, now=NOW):
    from carebell.messaging.models import AutomatedMessage

    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    decisions = list(plan_site_appointments(site, rules, PolicyCache().for_site(site), now))
    writer = OutboxWriter(now)
    for d in decisions:
        if d.planned:
            writer.add(d)
    writer.flush()
    return decisions


def test_a_reminder_is_planned_inside_the_window_the_day_before(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, _parent, appointment)] = family(site)
    plan(site)
    message = OutboxMessage.objects.get()
    local = message.planned_at.astimezone(site.zone)
    assert (
        local.date() == (appointment.starts_at.astimezone(site.zone) - dt.timedelta(days=1)).date()
    )
    assert dt.time(8) <= local.time() <= dt.time(20)
    assert (message.to_address, message.channel, message.status) == (
        "+12025550123",
        "sms",
        "scheduled",
    )
    assert message.entity_id == appointment.id and message.event_at == appointment.starts_at


def test_planning_twice_creates_nothing_new(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}, {"hours": 2}])
    family(site)
    plan(site)
    plan(site)
    assert OutboxMessage.objects.count() == 2


def test_siblings_on_the_same_day_share_one_message(site):
    enable(site, Kind.APPT_CONFIRMATION, [{"days": 3}])
    kids = family(site, children=2)
    plan(site, now=NOW - dt.timedelta(days=1))
    message = OutboxMessage.objects.get()
    assert sorted(message.entity_ids) == sorted(a.id for _, _, a in kids)
    assert {s.entity_id for s in message.subjects.all()} == {a.id for _, _, a in kids}


def test_a_contact_without_a_preference_is_skipped_with_a_reason(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    family(site, preference="")
    decisions = plan(site)
    assert OutboxMessage.objects.count() == 0
    assert [r.code for r in decisions[0].reasons] == [Code.NO_PREFERENCE]


def test_a_moved_appointment_cancels_its_reminder_and_plans_a_new_one(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, _parent, appointment)] = family(site)
    plan(site)
    appointment.starts_at += dt.timedelta(days=2)
    appointment.save()
    actions.appointment_changed(appointment, now=NOW, why=reason(Code.APPOINTMENT_MOVED))
    old, new = OutboxMessage.objects.order_by("id")
    assert old.status == OutboxStatus.CANCELLED
    assert old.reasons[-1]["code"] == "appointment_moved"
    assert new.status == OutboxStatus.SCHEDULED and new.event_at == appointment.starts_at


def test_a_cancelled_appointment_is_not_replanned(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, _parent, appointment)] = family(site)
    plan(site)
    appointment.status = "cancelled"
    appointment.save()
    actions.appointment_changed(appointment, now=NOW, why=reason(Code.APPOINTMENT_CANCELLED))
    assert list(OutboxMessage.objects.values_list("status", flat=True)) == ["cancelled"]


def test_an_opted_out_number_blocks_its_pending_messages(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    family(site)
    plan(site)
    blocked = actions.opt_out_address(site.id, "+12025550123", "sms", source="keyword", now=NOW)
    message = OutboxMessage.objects.get()
    assert blocked == 1
    assert (message.status, message.block_reason) == ("blocked", "opted_out")


def test_a_message_the_caps_leave_no_room_for_is_kept_as_blocked(site):
    from carebell.messaging.planning.decisions import Decision
    from carebell.messaging.planning.runner import is_capped

    capped = Decision(
        "skipped",
        kind="rx_pickup_reminder",
        channel="sms",
        site_id=site.id,
        patient_id=None,
        contact_id=None,
        contact_point_id=None,
        to="+12025550123",
        entity_type="fill",
        entity_id=None,
        event_at=None,
        planned_at=None,
        reasons=(reason(Code.CAP_DAILY), reason(Code.CAP_NO_ROOM)),
        dedupe_key="k1",
    )
    assert is_capped(capped)
    writer = OutboxWriter(NOW)
    writer.add_capped(capped)
    writer.flush()
    message = OutboxMessage.objects.get()
    assert (message.status, message.block_reason) == ("blocked", "cap")
    assert [r["code"] for r in message.reasons] == ["cap_daily", "cap_no_room"]


def test_a_picked_up_fill_stops_its_pending_pickup_reminders(pharmacy):
    from tests import factories

    patient = factories.make_patient(pharmacy)
    fill = factories.make_fill(factories.make_prescription(patient), step="ready")
    common = {
        "site": pharmacy,
        "patient": patient,
        "to_address": "+12025550123",
        "channel": "sms",
        "entity_type": "fill",
        "entity_id": fill.id,
        "planned_at": NOW,
        "due_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    reminder = OutboxMessage.objects.create(kind=Kind.RX_PICKUP_REMINDER, **common)
    review = OutboxMessage.objects.create(kind=Kind.REVIEW_REQUEST, **common)
    fill.step = "picked_up"
    fill.save()
    assert actions.fill_changed(fill, now=NOW) == 1
    reminder.refresh_from_db()
    review.refresh_from_db()
    assert (reminder.status, reminder.reasons[-1]["code"]) == ("cancelled", "picked_up")
    assert review.status == "scheduled"


def test_a_reminder_moved_earlier_keeps_its_reason_with_times_as_text(site):
    delivery = site.delivery
    day_before = (NOW + dt.timedelta(days=2)).astimezone(site.zone)
    delivery.delivery_days = [
        d for d in delivery.delivery_days if d != day_before.strftime("%a").lower()
    ]
    delivery.save()
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    family(site)
    plan(site)
    message = OutboxMessage.objects.get()
    moved = message.reasons[-1]
    assert moved["code"] == "outside_window_moved_earlier"
    assert dt.datetime.fromisoformat(moved["at"]) == message.planned_at
