from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebell.core.reasons import Code
from carebell.core.timing import (
    AppointmentFacts,
    Offset,
    change_reason,
    plan_appointment_message,
)
from carebell.core.vocab import PHONE_CHANNELS, AppointmentStatus, Channel, OffsetUnit, Weekday
from carebell.core.windows import (
    END_MARGIN,
    QUIET_END,
    QUIET_START,
    DeliveryPolicy,
    DeliverySettings,
)
from tests.core import strategies as S

NY = "America/New_York"
NOW = datetime(2024, 6, 1, tzinfo=UTC)
MON_9AM = datetime(2024, 6, 10, 13, 0, tzinfo=UTC)  # Monday 09:00 EDT
NO_SUNDAY = frozenset(Weekday) - {Weekday.SUN}
MOVED = Code.OUTSIDE_WINDOW_MOVED_EARLIER
TICK = timedelta(microseconds=1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def appt(start=MON_9AM, status=AppointmentStatus.BOOKED):
    return AppointmentFacts(1, 10, 100, start, status)


def plan(offset, start=MON_9AM, now=NOW, channel=Channel.SMS, **kw):
    p = DeliveryPolicy(DeliverySettings(zone=NY, **kw))
    return plan_appointment_message(p, channel, appt(start), offset, now)


@pytest.mark.parametrize(
    ("offset", "days", "at", "code"),
    [
        (Offset(3), None, utc(2024, 6, 7, 12), None),  # Friday 08:00 EDT
        (Offset(1), None, utc(2024, 6, 9, 12), None),  # Sunday 08:00
        (Offset(1), NO_SUNDAY, utc(2024, 6, 8, 23, 59), Code.OUTSIDE_WINDOW_MOVED_EARLIER),  # 19:59
        (Offset(0), None, utc(2024, 6, 10, 12), None),  # same day, before the 09:00 start
        (Offset(2, OffsetUnit.HOURS), None, utc(2024, 6, 9, 23, 59), MOVED),  # Sunday 19:59
        (Offset(20, OffsetUnit.HOURS), None, utc(2024, 6, 9, 17), None),  # Sunday 13:00 exactly
    ],
)
def test_appointment_offsets_plan_inside_the_window(offset, days, at, code):
    result = plan(offset, delivery_days=days or frozenset(Weekday))
    assert result.at == at
    assert [r.code for r in result.reasons] == ([code] if code else [])


def test_a_same_day_reminder_before_the_window_opens_moves_to_the_day_before():
    result = plan(Offset(0), start=utc(2024, 6, 10, 11, 30))  # 07:30 EDT
    assert result.at == utc(2024, 6, 9, 23, 59)  # Sunday 19:59 EDT, before the 20:00 end
    assert result.reasons[0].code is Code.OUTSIDE_WINDOW_MOVED_EARLIER


def test_a_reminder_whose_day_has_passed_is_skipped_with_a_reason():
    result = plan(Offset(3), now=utc(2024, 6, 9, 12))
    assert result.at is None
    assert result.reasons[0].code is Code.TARGET_PASSED


def test_a_reminder_after_the_days_window_closed_is_skipped_not_sent_late():
    result = plan(Offset(1), now=utc(2024, 6, 10, 1))  # Sunday 21:00 EDT
    assert result.at is None
    assert result.reasons[0].code is Code.NO_ALLOWED_TIME


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (AppointmentStatus.CANCELLED, Code.APPOINTMENT_CANCELLED),
        (AppointmentStatus.DELETED, Code.APPOINTMENT_CANCELLED),
        (AppointmentStatus.NO_SHOW, Code.APPOINTMENT_NOT_OPEN),
        (AppointmentStatus.COMPLETED, Code.APPOINTMENT_NOT_OPEN),
    ],
)
def test_closed_appointments_get_no_reminder(status, code):
    p = DeliveryPolicy(DeliverySettings(zone=NY))
    result = plan_appointment_message(p, Channel.SMS, appt(status=status), Offset(1), NOW)
    assert result.at is None and result.reasons[0].code is code


def test_a_started_appointment_gets_no_reminder():
    result = plan(Offset(0), now=MON_9AM)
    assert result.reasons[0].code is Code.APPOINTMENT_PASSED


@pytest.mark.parametrize(
    ("after", "code"),
    [
        (appt(), None),
        (appt(status=AppointmentStatus.CONFIRMED), None),
        (appt(start=MON_9AM + timedelta(hours=1)), Code.APPOINTMENT_MOVED),
        (appt(status=AppointmentStatus.CANCELLED), Code.APPOINTMENT_CANCELLED),
        (appt(status=AppointmentStatus.NO_SHOW), Code.APPOINTMENT_NOT_OPEN),
    ],
)
def test_a_changed_appointment_says_why_its_messages_are_replanned(after, code):
    found = change_reason(appt(), after)
    assert (found.code if found else None) == code


def test_the_reason_for_moving_earlier_reads_as_a_sentence():
    result = plan(Offset(1), delivery_days=NO_SUNDAY)
    assert "moved earlier to 2024-06-08T23:59:00+00:00" in result.reasons[0].message


# Properties over every zone, 2020–2040 ------------------------------------------------


@st.composite
def plans(draw):
    key = draw(S.zones)
    p = DeliveryPolicy(draw(S.settings(key)))
    recipient = draw(st.one_of(st.none(), S.zones.map(S.ZoneInfo)))
    unit = draw(st.sampled_from(list(OffsetUnit)))
    offset = Offset(
        draw(st.integers(0, 10) if unit is OffsetUnit.DAYS else st.integers(1, 72)), unit
    )
    # Half the time the target (or the day's first instant) falls on a window's edge.
    before = timedelta(**{unit.value: offset.amount})
    edge = S.instants_at_an_edge(p, recipient) if recipient else S.instants_at_an_edge(p)
    start = draw(st.one_of(S.instants(key), edge.map(lambda at: at + before)))
    now = start - timedelta(seconds=draw(st.integers(0, 20 * 86_400)))
    channel = draw(S.channels)
    return p, channel, AppointmentFacts(1, 1, 1, start), offset, now, recipient


def assert_inside_its_windows(p, channel, at, recipient):
    wall = at.astimezone(p.zone)
    window = p.settings.call_window if channel is Channel.CALL else p.settings.email_sms_window
    assert any(d.iso == wall.isoweekday() for d in p.settings.delivery_days)
    assert window.start <= wall.time() < window.end  # never at (or after) the end
    if channel in PHONE_CHANNELS:
        there = at.astimezone(recipient or p.zone).time()
        assert QUIET_START <= wall.time() < QUIET_END and QUIET_START <= there < QUIET_END


@settings(max_examples=200, deadline=None)
@given(plans())
def test_a_planned_message_is_allowed_before_its_target_and_the_appointment(case):
    p, channel, appointment, offset, now, recipient = case
    result = plan_appointment_message(p, channel, appointment, offset, now, recipient)
    if result.at is None:
        assert result.reasons and result.reasons[0].effect.value == "skip"
        return
    assert now <= result.at <= result.target < appointment.start
    assert_inside_its_windows(p, channel, result.at, recipient)
    again = plan_appointment_message(
        DeliveryPolicy(p.settings), channel, appointment, offset, now, recipient
    )
    assert again == result


@settings(max_examples=200, deadline=None)
@given(plans())
def test_the_planned_instant_is_never_at_or_after_a_window_end(case):
    p, channel, appointment, offset, now, recipient = case
    result = plan_appointment_message(p, channel, appointment, offset, now, recipient)
    if result.at is None:
        return
    assert p.is_allowed(channel, result.at, recipient)
    if result.reasons and result.at not in (now, result.target):
        # Moved back from a later target: a margin before its window's end.
        assert p.is_allowed(channel, result.at + END_MARGIN - TICK, recipient)


def test_a_message_due_exactly_when_the_window_closes_goes_a_minute_before():
    result = plan(Offset(1, OffsetUnit.HOURS), start=utc(2024, 6, 10, 1))  # 21:00 EDT
    assert result.target == utc(2024, 6, 10, 0)  # 20:00 EDT, the window's end
    assert result.at == utc(2024, 6, 9, 23, 59)  # 19:59 EDT
    assert result.reasons[0].code is MOVED


def test_a_call_to_a_zone_whose_quiet_hours_only_touch_the_call_window_is_skipped():
    # 09:00 in New York is 21:00 in Shanghai: no instant is inside both.
    p = DeliveryPolicy(DeliverySettings(zone=NY))
    result = plan_appointment_message(
        p, Channel.CALL, appt(), Offset(3), NOW, S.ZoneInfo("Asia/Shanghai")
    )
    assert result.at is None
    assert result.reasons[0].code is Code.NO_ALLOWED_TIME


def test_a_window_opening_at_a_skipped_midnight_still_plans_day_offsets():
    # America/Santiago springs forward at 24:00: 2024-09-08 00:00 does not exist.
    p = DeliveryPolicy(DeliverySettings(zone="America/Santiago"))
    start = datetime(2024, 9, 9, 14, 0, tzinfo=UTC)
    result = plan_appointment_message(
        p, Channel.EMAIL, AppointmentFacts(1, 1, 1, start), Offset(1), NOW
    )
    assert result.at is not None
    assert result.at.astimezone(p.zone).time() == time(8)


def test_a_policy_reused_with_a_later_now_does_not_serve_stale_plans():
    p = DeliveryPolicy(DeliverySettings(zone=NY))
    first = plan_appointment_message(p, Channel.SMS, appt(), Offset(3), NOW)
    later = plan_appointment_message(p, Channel.SMS, appt(), Offset(3), utc(2024, 6, 9))
    assert first.planned
    assert later.reasons[0].code is Code.TARGET_PASSED


def test_appointments_on_the_same_day_share_a_day_offset_plan():
    p = DeliveryPolicy(DeliverySettings(zone=NY))
    early = plan_appointment_message(p, Channel.SMS, appt(MON_9AM), Offset(1), NOW)
    late = plan_appointment_message(
        p, Channel.SMS, appt(MON_9AM + timedelta(hours=6)), Offset(1), NOW
    )
    assert early == late and early.at == utc(2024, 6, 9, 12)
