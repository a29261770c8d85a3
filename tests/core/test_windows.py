from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebell.core.reasons import Code
from carebell.core.vocab import PHONE_CHANNELS, Channel, Weekday
from carebell.core.windows import (
    END_MARGIN,
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
    # Half-open: a window's start is allowed, its end never is.
    ok = day_ok and window.start <= wall.time() < window.end
    if channel in PHONE_CHANNELS:
        ok = ok and QUIET_START <= wall.time() < QUIET_END
        there = at.astimezone(recipient or p.zone).time()
        ok = ok and QUIET_START <= there < QUIET_END
    return ok


@pytest.mark.parametrize(
    ("channel", "at", "allowed"),
    [
        (Channel.EMAIL, utc(2024, 6, 3, 12, 0), True),  # 08:00 EDT, window opens
        (Channel.EMAIL, utc(2024, 6, 3, 11, 59), False),
        (Channel.EMAIL, utc(2024, 6, 3, 23, 59, 59, 999_999), True),  # just before 20:00 EDT
        (Channel.EMAIL, utc(2024, 6, 4, 0, 0), False),  # 20:00 EDT: the end is not in it
        (Channel.SMS, utc(2024, 6, 4, 0, 0), False),
        (Channel.CALL, utc(2024, 6, 3, 23, 0), False),  # 19:00 EDT, the call window's end
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
    assert p.is_allowed(Channel.SMS, utc(2024, 6, 3, 12, 0))  # 08:00 EDT
    assert p.is_allowed(Channel.SMS, utc(2024, 6, 4, 0, 59, 59))  # 20:59:59 EDT
    assert not p.is_allowed(Channel.SMS, utc(2024, 6, 4, 1, 0))  # 21:00 EDT
    assert p.why_not(Channel.SMS, utc(2024, 6, 4, 1, 0)).code is Code.QUIET_HOURS


def test_a_message_may_go_at_eight_but_never_at_nine_in_the_evening():
    p = policy(email_sms_window=TimeWindow(time(0), time(23, 59)))
    at_eight, at_nine = utc(2024, 6, 3, 12), utc(2024, 6, 4, 1)  # 08:00 and 21:00 EDT
    assert p.is_allowed(Channel.SMS, at_eight) and p.why_not(Channel.SMS, at_eight) is None
    assert not p.is_allowed(Channel.SMS, at_nine)
    assert p.latest_allowed(Channel.SMS, at_nine, at_eight) < at_nine
    assert p.earliest_allowed(Channel.SMS, at_eight - TICK) == at_eight
    assert p.earliest_allowed(Channel.SMS, at_nine) == at_eight + timedelta(days=1)


def test_quiet_hours_follow_the_recipients_zone():
    p = policy()
    at = utc(2024, 6, 3, 14, 0)  # 10:00 in New York, 07:00 in Los Angeles
    assert p.is_allowed(Channel.SMS, at)
    assert not p.is_allowed(Channel.SMS, at, zone_for("America/Los_Angeles"))
    assert p.why_not(Channel.SMS, at, zone_for("America/Los_Angeles")).code is Code.QUIET_HOURS
    assert p.is_allowed(Channel.EMAIL, at, zone_for("America/Los_Angeles"))


def test_the_recipients_quiet_hours_end_at_nine_not_after_it():
    p, london = policy(), zone_for("Europe/London")
    nine_in_london = utc(2024, 6, 3, 20, 0)  # 16:00 in New York
    assert not p.is_allowed(Channel.SMS, nine_in_london, london)
    assert p.why_not(Channel.SMS, nine_in_london, london).code is Code.QUIET_HOURS
    assert p.is_allowed(Channel.SMS, nine_in_london - TICK, london)


def test_a_day_that_is_not_a_delivery_day_is_refused_with_its_reason():
    p = policy(delivery_days=frozenset(Weekday) - {Weekday.SUN})
    why = p.why_not(Channel.EMAIL, utc(2024, 6, 2, 15, 0))  # a Sunday
    assert why.code is Code.NOT_DELIVERY_DAY


def test_latest_allowed_goes_back_to_a_minute_before_the_previous_window_end():
    p = policy()
    assert p.latest_allowed(Channel.SMS, utc(2024, 6, 3, 11, 0), utc(2024, 6, 1)) == utc(
        2024, 6, 2, 23, 59
    )  # 19:59 EDT: the window ends at 20:00, which is not in it


def test_latest_allowed_is_the_target_when_the_target_is_allowed_even_late_in_the_window():
    p = policy()
    target = utc(2024, 6, 2, 23, 59, 30)  # 19:59:30 EDT
    assert p.latest_allowed(Channel.SMS, target, utc(2024, 6, 1)) == target


def test_latest_allowed_is_not_before_its_lower_bound_in_a_windows_last_minute():
    p = policy()
    not_before = utc(2024, 6, 2, 23, 59, 30)  # 19:59:30 EDT
    assert p.latest_allowed(Channel.SMS, utc(2024, 6, 3, 11), not_before) == not_before


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


@pytest.mark.parametrize(
    ("window", "edge", "code"),
    [
        (TimeWindow(time(21), time(23)), utc(2024, 6, 4, 1), Code.QUIET_HOURS),  # 21:00 EDT
        (TimeWindow(time(6), time(8)), utc(2024, 6, 3, 12), Code.OUTSIDE_WINDOW),  # 08:00 EDT
    ],
    ids=["starting-at-nine-pm", "ending-at-eight-am"],
)
def test_a_window_that_quiet_hours_clip_to_one_instant_allows_none(window, edge, code):
    p = policy(call_window=window, email_sms_window=window)
    for channel in (Channel.CALL, Channel.SMS):
        assert not p.is_allowed(channel, edge)
        assert p.why_not(channel, edge).code is code
        assert p.allowed_intervals(channel, date(2024, 6, 3)) == ()
        assert p.earliest_allowed(channel, utc(2024, 6, 3)) is None
        assert p.latest_allowed(channel, utc(2024, 6, 10), utc(2024, 6, 1)) is None
    opens = p.local_instant(date(2024, 6, 3), window.start)
    assert p.is_allowed(Channel.EMAIL, opens)  # email keeps the configured window


def test_a_window_starting_where_it_ends_allows_no_instant():
    p = policy(email_sms_window=TimeWindow(time(10), time(10)))
    ten = utc(2024, 6, 3, 14)  # 10:00 EDT
    assert not p.is_allowed(Channel.EMAIL, ten)
    assert p.why_not(Channel.EMAIL, ten).code is Code.OUTSIDE_WINDOW
    assert p.earliest_allowed(Channel.EMAIL, utc(2024, 6, 3)) is None
    assert p.latest_allowed(Channel.EMAIL, utc(2024, 6, 10), utc(2024, 6, 1)) is None


def test_calls_to_a_zone_whose_quiet_hours_only_touch_the_call_window_have_no_allowed_time():
    # 09:00 in New York is 21:00 in Shanghai: the call window opens as quiet hours begin.
    p, shanghai = policy(), zone_for("Asia/Shanghai")
    touching = utc(2024, 6, 3, 13)
    assert not p.is_allowed(Channel.CALL, touching, shanghai)
    assert p.why_not(Channel.CALL, touching, shanghai).code is Code.QUIET_HOURS
    assert p.allowed_intervals(Channel.CALL, date(2024, 6, 3), shanghai) == ()
    assert p.earliest_allowed(Channel.CALL, utc(2024, 6, 3), utc(2024, 6, 20), shanghai) is None
    assert p.latest_allowed(Channel.CALL, utc(2024, 6, 20), utc(2024, 6, 3), shanghai) is None


# Properties over every zone, 2020–2040 ------------------------------------------------


@st.composite
def cases(draw):
    key = draw(S.zones)
    recipient = draw(st.one_of(st.none(), S.zones))
    p = DeliveryPolicy(draw(S.settings(key)))
    zone = zone_for(recipient) if recipient else None
    edges = S.instants_at_an_edge(p, zone) if zone else S.instants_at_an_edge(p)
    at = draw(st.one_of(S.instants(key), S.instants_at_an_edge(p), edges))
    return p, draw(S.channels), at, zone


def interval_of(p, channel, at, recipient):
    """The allowed interval [lo, hi) that holds `at`, or None."""
    intervals = p.allowed_intervals(channel, p.local_date(at), recipient)
    return next(((lo, hi) for lo, hi in intervals if lo <= at < hi), None)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_is_allowed_agrees_with_the_wall_clock_definition(case):
    p, channel, at, recipient = case
    assert p.is_allowed(channel, at, recipient) == wall_allowed(p, channel, at, recipient)
    assert (p.why_not(channel, at, recipient) is None) == wall_allowed(p, channel, at, recipient)
    inside = interval_of(p, channel, at, recipient) is not None
    assert inside == wall_allowed(p, channel, at, recipient)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_allowed_intervals_are_half_open_and_never_empty(case):
    p, channel, at, recipient = case
    for lo, hi in p.allowed_intervals(channel, p.local_date(at), recipient):
        assert lo < hi
        assert wall_allowed(p, channel, lo, recipient)
        assert wall_allowed(p, channel, hi - TICK, recipient)
        assert not wall_allowed(p, channel, hi, recipient)


@settings(max_examples=200, deadline=None)
@given(cases(), st.integers(0, 10 * 86_400))
def test_latest_allowed_is_allowed_and_as_late_as_possible(case, back):
    p, channel, target, recipient = case
    not_before = target - timedelta(seconds=back)
    found = p.latest_allowed(channel, target, not_before, recipient)
    if found is None:
        assert not wall_allowed(p, channel, target, recipient)
        assert not wall_allowed(p, channel, not_before, recipient)
        return
    assert not_before <= found <= target
    assert wall_allowed(p, channel, found, recipient)
    later = found + END_MARGIN
    assert found == target or later > target or not wall_allowed(p, channel, later, recipient)
    assert p.latest_allowed(channel, target, not_before, recipient) == found  # deterministic


@settings(max_examples=200, deadline=None)
@given(cases(), st.integers(0, 10 * 86_400))
def test_latest_allowed_is_strictly_before_the_end_of_its_window(case, back):
    p, channel, target, recipient = case
    not_before = target - timedelta(seconds=back)
    found = p.latest_allowed(channel, target, not_before, recipient)
    if found is None:
        return
    lo, hi = interval_of(p, channel, found, recipient)
    assert found < hi and not wall_allowed(p, channel, hi, recipient)
    # Moved back from a later target, it lies a margin before the end (the bounds aside).
    assert found in (target, not_before) or found == max(lo, hi - END_MARGIN)


@settings(max_examples=100, deadline=None)
@given(S.zones, S.channels, st.integers(0, 23 * 60 + 59), st.data())
def test_a_zero_length_window_allows_no_instant(key, channel, minute, data):
    empty = TimeWindow(time(minute // 60, minute % 60), time(minute // 60, minute % 60))
    p = DeliveryPolicy(DeliverySettings(zone=key, email_sms_window=empty, call_window=empty))
    at = data.draw(st.one_of(S.instants(key), S.instants_at_an_edge(p)))
    assert not p.is_allowed(channel, at)
    assert p.why_not(channel, at).code in (Code.OUTSIDE_WINDOW, Code.QUIET_HOURS)
    assert p.allowed_intervals(channel, p.local_date(at)) == ()
    assert p.earliest_allowed(channel, at, at + timedelta(days=3)) is None
    assert p.latest_allowed(channel, at, at - timedelta(days=3)) is None


@settings(max_examples=200, deadline=None)
@given(cases())
def test_earliest_allowed_is_allowed_and_as_early_as_possible(case):
    p, channel, at, recipient = case
    found = p.earliest_allowed(channel, at, None, recipient)
    if found is None:
        assert not wall_allowed(p, channel, at, recipient)
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
