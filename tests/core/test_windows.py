from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebell.core.reasons import Code
from carebell.core.vocab import PHONE_CHANNELS, Channel, Weekday
from carebell.core.windows import (
    QUIET_END,
    QUIET_START,
    DeliveryPolicy,
    DeliverySettings,
    TimeWindow,
    zone_for,
)
from tests.core import strategies as S

NY = "America/New_York"
TICK = timedelta(microseconds=1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def policy(**kw):
    return DeliveryPolicy(DeliverySettings(**{"zone": NY, **kw}))


def wall_allowed(p: DeliveryPolicy, channel, at, recipient=None) -> bool:
    """The definition of "allowed", checked the slow, obvious way."""
    s = p.settings
    wall = at.astimezone(p.zone)
    window = s.call_window if channel is Channel.CALL else s.email_sms_window
    day_ok = any(d.iso == wall.isoweekday() for d in s.delivery_days)
    ok = day_ok and window.start <= wall.time() <= window.end
    if channel in PHONE_CHANNELS:
        ok = ok and QUIET_START <= wall.time() <= QUIET_END
        there = at.astimezone(recipient or p.zone).time()
        ok = ok and QUIET_START <= there <= QUIET_END
    return ok


@pytest.mark.parametrize(
    ("channel", "at", "allowed"),
    [
        (Channel.EMAIL, utc(2024, 6, 3, 12, 0), True),  # 08:00 EDT, window opens
        (Channel.EMAIL, utc(2024, 6, 3, 11, 59), False),
        (Channel.EMAIL, utc(2024, 6, 4, 0, 0), True),  # 20:00 EDT, end included
        (Channel.EMAIL, utc(2024, 6, 4, 0, 0, 1), False),
        (Channel.CALL, utc(2024, 6, 3, 12, 30), False),  # 08:30: call window opens at 09:00
        (Channel.CALL, utc(2024, 6, 3, 13, 0), True),
    ],
)
def test_default_windows_decide_allowed_instants(channel, at, allowed):
    assert policy().is_allowed(channel, at) is allowed


def test_a_wide_sms_window_is_clipped_to_quiet_hours():
    p = policy(email_sms_window=TimeWindow(time(6), time(23)))
    assert p.is_allowed(Channel.EMAIL, utc(2024, 6, 3, 10, 30))  # 06:30 EDT, email unclipped
    assert not p.is_allowed(Channel.SMS, utc(2024, 6, 3, 10, 30))
    assert p.why_not(Channel.SMS, utc(2024, 6, 3, 10, 30)).code is Code.QUIET_HOURS
    assert p.is_allowed(Channel.SMS, utc(2024, 6, 4, 1, 0))  # 21:00 EDT
    assert not p.is_allowed(Channel.SMS, utc(2024, 6, 4, 1, 0, 1))


def test_quiet_hours_follow_the_recipients_zone():
    p = policy()
    at = utc(2024, 6, 3, 14, 0)  # 10:00 in New York, 07:00 in Los Angeles
    assert p.is_allowed(Channel.SMS, at)
    assert not p.is_allowed(Channel.SMS, at, zone_for("America/Los_Angeles"))
    assert p.why_not(Channel.SMS, at, zone_for("America/Los_Angeles")).code is Code.QUIET_HOURS
    assert p.is_allowed(Channel.EMAIL, at, zone_for("America/Los_Angeles"))


def test_a_day_that_is_not_a_delivery_day_is_refused_with_its_reason():
    p = policy(delivery_days=frozenset(Weekday) - {Weekday.SUN})
    why = p.why_not(Channel.EMAIL, utc(2024, 6, 2, 15, 0))  # a Sunday
    assert why.code is Code.NOT_DELIVERY_DAY


def test_latest_allowed_goes_back_to_the_previous_window_end():
    p = policy()
    assert p.latest_allowed(Channel.SMS, utc(2024, 6, 3, 11, 0), utc(2024, 6, 1)) == utc(
        2024, 6, 3, 0, 0
    )


def test_latest_allowed_respects_the_lower_bound():
    p = policy()
    assert p.latest_allowed(Channel.SMS, utc(2024, 6, 3, 11, 0), utc(2024, 6, 3, 1)) is None


def test_earliest_allowed_waits_for_the_window():
    p = policy()
    assert p.earliest_allowed(Channel.CALL, utc(2024, 6, 3, 2, 0)) == utc(2024, 6, 3, 13, 0)


def test_a_window_opening_in_a_spring_forward_gap_opens_when_the_clocks_jump():
    p = policy(email_sms_window=TimeWindow(time(2, 30), time(20)))
    # 2024-03-10 02:30 does not exist in New York; 03:00 EDT is 07:00 UTC.
    assert p.allowed_intervals(Channel.EMAIL, date(2024, 3, 10))[0][0] == utc(2024, 3, 10, 7)
    assert p.local_instant(date(2024, 3, 10), time(2, 30)) == utc(2024, 3, 10, 7)


def test_an_ambiguous_wall_time_is_its_first_occurrence():
    p = policy()
    assert p.local_instant(date(2024, 11, 3), time(1, 30)) == utc(2024, 11, 3, 5, 30)


def test_a_fold_inside_the_window_repeats_no_instant():
    p = policy(email_sms_window=TimeWindow(time(0), time(23, 59)))
    intervals = p.allowed_intervals(Channel.EMAIL, date(2024, 11, 3))
    assert intervals == ((utc(2024, 11, 3, 4), utc(2024, 11, 4, 4, 59)),)  # one 25-hour day


def test_a_window_that_quiet_hours_empty_disables_the_channel():
    p = policy(call_window=TimeWindow(time(21, 30), time(23)))
    assert p.earliest_allowed(Channel.CALL, utc(2024, 6, 3)) is None
    assert p.why_not(Channel.CALL, utc(2024, 6, 4, 2)).code is Code.QUIET_HOURS


# Properties over every zone, 2020–2040 ------------------------------------------------


@st.composite
def cases(draw):
    key = draw(S.zones)
    recipient = draw(st.one_of(st.none(), S.zones))
    return (
        DeliveryPolicy(draw(S.settings(key))),
        draw(S.channels),
        draw(S.instants(key)),
        zone_for(recipient) if recipient else None,
    )


@settings(max_examples=150, deadline=None)
@given(cases())
def test_is_allowed_agrees_with_the_wall_clock_definition(case):
    p, channel, at, recipient = case
    assert p.is_allowed(channel, at, recipient) == wall_allowed(p, channel, at, recipient)
    day = p.local_date(at)
    inside = any(lo <= at <= hi for lo, hi in p.allowed_intervals(channel, day, recipient))
    assert inside == wall_allowed(p, channel, at, recipient)


@settings(max_examples=150, deadline=None)
@given(cases(), st.integers(0, 10 * 86_400))
def test_latest_allowed_is_allowed_and_as_late_as_possible(case, back):
    p, channel, target, recipient = case
    not_before = target - timedelta(seconds=back)
    found = p.latest_allowed(channel, target, not_before, recipient)
    if found is None:
        assert not wall_allowed(p, channel, target, recipient)
        return
    assert not_before <= found <= target
    assert wall_allowed(p, channel, found, recipient)
    assert found == target or not wall_allowed(p, channel, found + TICK, recipient)
    assert p.latest_allowed(channel, target, not_before, recipient) == found  # deterministic


@settings(max_examples=150, deadline=None)
@given(cases())
def test_earliest_allowed_is_allowed_and_as_early_as_possible(case):
    p, channel, at, recipient = case
    found = p.earliest_allowed(channel, at, None, recipient)
    if found is None:
        return
    assert found >= at
    assert wall_allowed(p, channel, found, recipient)
    assert found == at or not wall_allowed(p, channel, found - TICK, recipient)


@settings(max_examples=150, deadline=None)
@given(S.zones.flatmap(lambda k: st.tuples(st.just(k), S.instants_near_transition(k))), st.data())
def test_a_nonexistent_local_time_moves_forward_and_an_ambiguous_one_happens_once(case, data):
    key, near = case
    zone = zone_for(key)
    p = DeliveryPolicy(DeliverySettings(zone=key))
    wall = near.astimezone(zone)
    day = wall.date()
    t = data.draw(st.sampled_from([wall.time().replace(microsecond=0), time(0), time(2, 30)]))
    found = p.local_instant(day, t)
    here = found.astimezone(zone)
    assert here.date() == day and here.time() >= t
    before = (found - TICK).astimezone(zone)
    assert before.date() != day or before.time() < t
