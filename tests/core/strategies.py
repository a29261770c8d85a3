"""Hypothesis strategies for the time-zone properties: every IANA zone, 2020–2040,
with instants drawn near DST transitions half of the time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import strategies as st

from carebell.core.vocab import Channel, Weekday
from carebell.core.windows import QUIET_END, QUIET_START, DeliverySettings, TimeWindow

ZONES = sorted(available_timezones())
START = datetime(2020, 1, 1, tzinfo=UTC)
END = datetime(2040, 12, 31, tzinfo=UTC)


def _offset(zone: ZoneInfo, at: datetime):
    return at.astimezone(zone).utcoffset()


@cache
def transitions(key: str, year: int) -> tuple[datetime, ...]:
    """The UTC instants at which `key` changes its UTC offset during `year`."""
    zone = ZoneInfo(key)
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    stop = datetime(year + 1, 1, 1, tzinfo=UTC)
    while at < stop:
        nxt = at + timedelta(days=7)
        if _offset(zone, at) != _offset(zone, nxt):
            lo, hi = at, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if _offset(zone, mid) == _offset(zone, lo) else (lo, mid)
            found.append(hi.replace(microsecond=0))
        at = nxt
    return tuple(found)


zones = st.sampled_from(ZONES)
uniform_instants = st.datetimes(
    min_value=START.replace(tzinfo=None), max_value=END.replace(tzinfo=None), timezones=st.just(UTC)
)


@st.composite
def instants_near_transition(draw, key: str):
    """An instant within a day of one of the zone's transitions (uniform if none)."""
    year = draw(st.integers(2020, 2040))
    found = transitions(key, year)
    if not found:
        return draw(uniform_instants)
    base = draw(st.sampled_from(found))
    return base + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))


@st.composite
def instants(draw, key: str):
    if draw(st.booleans()):
        return draw(instants_near_transition(key))
    return draw(uniform_instants)


#: Minutes of the day where bugs hide: the quiet hours' ends and the default windows'.
EDGE_MINUTES = (0, 8 * 60, 9 * 60, 19 * 60, 20 * 60, 21 * 60, 23 * 60 + 59)
_minutes = st.one_of(st.integers(0, 23 * 60 + 59), st.sampled_from(EDGE_MINUTES))


def _clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


@st.composite
def windows(draw):
    """A window of whole minutes; often ending on a quiet-hours edge, sometimes empty."""
    start = draw(_minutes)
    later_edges = [m for m in EDGE_MINUTES if m > start] or [start]
    end = draw(
        st.one_of(st.integers(start, 23 * 60 + 59), st.sampled_from(later_edges), st.just(start))
    )
    return TimeWindow(_clock(start), _clock(end))


def window_edges(settings: DeliverySettings) -> tuple[time, ...]:
    """The wall times at which a window or quiet hours open or close for `settings`."""
    found = {QUIET_START, QUIET_END}
    for w in (settings.email_sms_window, settings.call_window):
        found.update((w.start, w.end))
    return tuple(sorted(found))


@st.composite
def instants_at_an_edge(draw, policy, zone: ZoneInfo | None = None):
    """An instant at which, in `zone` (default the site's), a window or quiet hours
    open or close: the instants a closed-interval mistake shows up at."""
    wall = draw(st.sampled_from(window_edges(policy.settings)))
    day = policy.local_date(draw(uniform_instants))
    return policy.local_instant(day, wall, zone)


@st.composite
def settings(draw, key: str):
    days = draw(st.frozensets(st.sampled_from(list(Weekday)), min_size=1))
    return DeliverySettings(
        zone=key,
        email_sms_window=draw(windows()),
        call_window=draw(windows()),
        delivery_days=days,
    )


channels = st.sampled_from(list(Channel))
