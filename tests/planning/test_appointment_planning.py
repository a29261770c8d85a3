"""Planning appointment messages: who, when, once, and replanned on change."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from carebell.appointments import actions as appointment_actions
from carebell.core.reasons import Code, reason
from carebell.core.vocab import Kind, OutboxStatus
from carebell.dispatch.checks import apply_verdicts, check_at_send
from carebell.messaging.models import OutboxMessage
from carebell.outbox import OutboxWriter
from carebell.pharmacy import actions as fill_actions
from carebell.planning.appointments import plan_site_appointments
from carebell.planning.policies import PolicyCache
from carebell.twoway import consent
from tests import factories
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


def plan(site, now=NOW):
    from carebell.messaging.models import AutomatedMessage

    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    decisions = list(plan_site_appointments(site, rules, PolicyCache().for_site(site), now))
    writer = OutboxWriter(now)
    for d in decisions:
        writer.store(d)
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
    appointment_actions.appointment_changed(
        appointment, now=NOW, why=reason(Code.APPOINTMENT_MOVED)
    )
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
    appointment_actions.appointment_changed(
        appointment, now=NOW, why=reason(Code.APPOINTMENT_CANCELLED)
    )
    assert list(OutboxMessage.objects.values_list("status", flat=True)) == ["cancelled"]


def test_an_opted_out_number_blocks_its_pending_messages(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    family(site)
    plan(site)
    blocked = consent.opt_out_address(site.id, "+12025550123", "sms", source="keyword", now=NOW)
    message = OutboxMessage.objects.get()
    assert blocked == 1
    assert (message.status, message.block_reason) == ("blocked", "opted_out")


def test_a_message_the_caps_leave_no_room_for_is_kept_as_blocked(site):
    from carebell.outbox import is_capped
    from carebell.planning.decisions import Decision

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
    assert fill_actions.fill_changed(fill, now=NOW) == 1
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


# SMS frequency caps (SPEC §4)


def local(site, day_offset: int, hour: int, minute: int = 0) -> dt.datetime:
    """`hour`:`minute` in the site's zone, `day_offset` days after NOW's local date."""
    day = NOW.astimezone(site.zone).date() + dt.timedelta(days=day_offset)
    return dt.datetime.combine(day, dt.time(hour, minute), site.zone)


def visits(site, *starts: dt.datetime):
    """One child (one parent's phone, reminders by SMS) with an appointment at each
    of `starts`."""
    [(child, _parent, first)] = family(site, now=starts[0] - dt.timedelta(days=3))
    others = [factories.make_appointment(child, starts_at=at) for at in starts[1:]]
    return child, [first, *others]


def texts(site):
    return OutboxMessage.objects.filter(site=site, channel="sms").order_by("planned_at", "id")


def test_a_patient_with_visits_on_four_days_of_one_week_gets_three_reminders_that_week(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    _child, appointments = visits(site, *(local(site, n, 10) for n in (2, 3, 4, 5)))
    decisions = plan(site)
    scheduled = texts(site).filter(status="scheduled")
    assert [m.entity_id for m in scheduled] == [a.id for a in appointments[:3]]
    assert len({m.planned_at.astimezone(site.zone).date() for m in scheduled}) == 3
    [fourth] = [d for d in decisions if d.entity_id == appointments[3].id]
    assert not fourth.planned
    assert [r.code for r in fourth.reasons][-2:] == [Code.CAP_WEEKLY, Code.CAP_NO_ROOM]


def test_a_reminder_the_caps_leave_no_room_for_is_kept_as_blocked_by_the_planner(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    _child, appointments = visits(site, *(local(site, n, 10) for n in (2, 3, 4, 5)))
    run_planner()
    blocked = texts(site).get(status="blocked")
    assert (blocked.entity_id, blocked.block_reason) == (appointments[3].id, "cap")
    assert [r["code"] for r in blocked.reasons][-2:] == ["cap_weekly", "cap_no_room"]
    run_planner()
    assert texts(site).count() == 4


def test_a_visits_second_reminder_of_the_same_day_waits_for_the_next_morning(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}, {"hours": 2}])
    visits(site, local(site, 3, 9))  # 2 hours before is 07:00: moved to the evening before
    decisions = plan(site)
    day_before, morning = texts(site)
    assert day_before.planned_at.astimezone(site.zone).date() == local(site, 2, 0).date()
    assert morning.planned_at == local(site, 3, 8)
    assert morning.reasons[-1]["code"] == "cap_daily"
    assert dt.datetime.fromisoformat(morning.reasons[-1]["at"]) == morning.planned_at
    plan(site)
    assert texts(site).count() == 2 and len(decisions) == 2


def test_a_second_reminder_with_no_time_left_is_combined_with_the_days_reminder(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}, {"hours": 2}])
    _child, [appointment] = visits(site, local(site, 3, 8))
    decisions = plan(site)
    [combined] = [d for d in decisions if not d.planned]
    assert [r.code for r in combined.reasons][-1] == Code.CAP_COMBINED
    assert combined.entity_id == appointment.id
    assert texts(site).filter(status="scheduled").count() == 1
    kept = texts(site).get(status="blocked")
    assert (kept.block_reason, kept.reasons[-1]["code"]) == ("cap", "cap_combined")


def test_planning_the_capped_week_again_gives_the_same_answers(site):
    enable(site, Kind.APPT_CONFIRMATION, [{"days": 3}])
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    visits(site, *(local(site, n, 10) for n in (4, 5, 7)))
    first = [(d.dedupe_key, d.status, d.planned_at) for d in plan(site)]
    again = [(d.dedupe_key, d.status, d.planned_at) for d in plan(site)]
    assert sorted(first, key=str) == sorted(again, key=str)
    days = [
        m.planned_at.astimezone(site.zone).date() for m in texts(site).filter(status="scheduled")
    ]
    assert set(Counter(days).values()) == {1}
    for start in days:
        assert sum(start <= d < start + dt.timedelta(days=7) for d in days) <= 3


def test_appointment_and_pharmacy_texts_share_one_budget(pharmacy):
    from tests.planning.test_planning_events import reachable, ready_fill

    enable(pharmacy, Kind.APPT_REMINDER, [{"days": 1}])
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    for category in ("reminders", "rx_ready"):
        reachable(patient, category, "sms", mobile="+12025550171")
    factories.make_appointment(patient, starts_at=local(pharmacy, 1, 15))
    ready_fill(patient)
    run_planner()
    planned = dict(texts(pharmacy).values_list("kind", "planned_at"))
    assert planned == {"appt_reminder": NOW, "rx_ready": local(pharmacy, 1, 8)}


def test_a_text_due_when_the_patient_already_had_one_today_is_deferred_at_send_time(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    visits(site, local(site, 1, 15))
    plan(site)
    reminder = texts(site).get()
    assert reminder.planned_at == NOW  # planned when nothing else was
    other = OutboxMessage.objects.create(
        site=site, patient=reminder.patient, to_address=reminder.to_address, channel="sms",
        kind=Kind.RX_READY, status="delivered", planned_at=NOW - HOUR, due_at=NOW - HOUR,
        sent_at=NOW - HOUR, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    verdicts = check_at_send([reminder], NOW, PolicyCache())
    verdict = verdicts[reminder.id]
    assert (verdict.status, verdict.defer_to) == (OutboxStatus.SCHEDULED, local(site, 1, 8))
    assert verdict.reasons[0].code is Code.CAP_DAILY
    apply_verdicts(verdicts, NOW)
    reminder.refresh_from_db()
    assert (reminder.status, reminder.planned_at) == ("scheduled", local(site, 1, 8))
    assert reminder.reasons[-1]["code"] == "cap_daily"
    assert other.id not in verdicts


def test_at_send_time_a_text_with_no_day_left_before_its_visit_is_blocked_not_dropped(site):
    enable(site, Kind.APPT_REMINDER, [{"hours": 2}])
    visits(site, local(site, 0, 19))
    plan(site)
    reminder = texts(site).get()
    OutboxMessage.objects.create(
        site=site, patient=reminder.patient, to_address=reminder.to_address, channel="sms",
        kind=Kind.APPT_CONFIRMATION, status="sent", planned_at=NOW - HOUR, due_at=NOW - HOUR,
        sent_at=NOW - HOUR, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    verdict = check_at_send([reminder], NOW, PolicyCache())[reminder.id]
    assert (verdict.status, verdict.block_reason) == (OutboxStatus.BLOCKED, "cap")
    assert [r.code for r in verdict.reasons] == [Code.CAP_DAILY, Code.CAP_NO_ROOM]


def test_two_capped_texts_due_together_go_one_today_and_one_tomorrow(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    visits(site, local(site, 1, 15), local(site, 2, 15))
    plan(site)
    OutboxMessage.objects.update(planned_at=NOW, due_at=NOW)  # both due now
    both = list(texts(site))
    verdicts = check_at_send(both, NOW, PolicyCache())
    assert list(verdicts) == [both[1].id]
    assert verdicts[both[1].id].defer_to == local(site, 1, 8)


def run_planner():
    from carebell.planning.runner import plan_once

    plan_once(now=NOW)


def test_a_booked_visit_whose_reminder_the_caps_keep_back_is_stored_as_blocked(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    child, _ = visits(site, *(local(site, n, 10) for n in (2, 3, 4)))
    plan(site)
    fourth = factories.make_appointment(child, starts_at=local(site, 5, 10))
    appointment_actions.appointment_saved(fourth, None, now=NOW)
    kept = texts(site).get(entity_id=fourth.id)
    assert (kept.status, kept.block_reason) == ("blocked", "cap")
    assert texts(site).filter(status="scheduled").count() == 3


def test_the_sms_caps_read_of_some_patients_is_their_share_of_the_sites_read(org, site):
    # PostgreSQL looks each patient up by the outbox's patient index (a lateral): the
    # same texts as the site's one read, and only the capped texts still counting.
    from carebell.planning.sms_caps import LOOKBACK, SmsCaps

    other_site = factories.make_site(org, name="Elm Street")
    people = [factories.make_patient(site, external_id=f"S{n}") for n in range(3)]

    def text(patient, n, **fields):
        row = {"site": site, "patient": patient, "to_address": f"+1555010{n:04d}",
               "channel": "sms", "kind": Kind.APPT_REMINDER, "status": "scheduled",
               "planned_at": NOW + n * HOUR, "due_at": NOW + n * HOUR,
               "dedupe_key": f"t{n}", "created_at": NOW, "updated_at": NOW, **fields}  # fmt: skip
        OutboxMessage.objects.create(**row)

    for n, patient in enumerate(people):
        text(patient, 10 * n)
        text(patient, 10 * n + 1, kind=Kind.RECALL, status="delivered", sent_at=NOW)
        text(patient, 10 * n + 2, status="cancelled")  # never sent: not counted
        text(patient, 10 * n + 3, channel="email")
        text(patient, 10 * n + 4, planned_at=NOW - LOOKBACK - HOUR)  # too old to count
        text(patient, 10 * n + 5, site=other_site)  # another site's budget
    whole, some = SmsCaps(site.pk, NOW), SmsCaps(site.pk, NOW)
    whole.load(None)
    some.load([people[0].pk, people[2].pk])
    wanted = {people[0].pk, people[2].pk}
    assert some.history == {k: v for k, v in whole.history.items() if k[0] in wanted}
    assert sorted(key for texts in some.history.values() for _, _, key, *_ in texts) == [
        "t0",
        "t1",
        "t20",
        "t21",
    ]
