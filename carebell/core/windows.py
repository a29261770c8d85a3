"""Delivery windows, delivery days, quiet hours and time zones (SPEC §4).

An instant is *allowed* for a channel when, on the site's wall clock, its weekday is a
delivery day and its time of day lies inside the channel's window; for SMS and calls it
must also lie inside quiet hours (08:00–21:00) on the recipient's wall clock. Every
window is half-open, [start, end): a text may go at 08:00:00 but never at 21:00:00, an
email of a 08:00–20:00 window never at 20:00:00. A window whose start is its end (as
configured, or once quiet hours clip it) allows no instant at all.

Defining "allowed" on the wall clock, instant by instant, is what makes DST come out
right in every zone: a window that opens inside a spring-forward gap opens when the
clocks jump (nonexistent times move forward), and an instant is a single point in UTC,
so an ambiguous wall time in a fold is planned once.

Build one `DeliveryPolicy` per site and reuse it: it caches the zone and, per local
day, the allowed intervals in UTC, so the nightly planner pays for a day once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import PHONE_CHANNELS, CancellationMode, Channel, Kind, Weekday

#: Recipient-protective quiet hours for SMS and calls, whatever a site configures
#: (TCPA-style calling hours: not before 8 a.m. nor after 9 p.m. recipient local time).
QUIET_START = time(8)
QUIET_END = time(21)

ALL_DAYS = frozenset(Weekday)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400
#: How far before a window's end `latest_allowed` plans when it moves a message back
#: from a later target: the end itself is not allowed, and an instant just before it
#: would be missed by a worker that wakes a moment late (it polls about every second),
#: then deferred to the next day. One whole minute: 19:59:00 for a 20:00 end.
END_MARGIN = timedelta(minutes=1)
_ONE_DAY = timedelta(days=1)
#: How far a search for an allowed time may look before giving up (a year covers
#: every weekly and seasonal pattern; only impossible settings get that far).
MAX_SEARCH_DAYS = 370
_SEARCH = timedelta(days=MAX_SEARCH_DAYS)

Interval = tuple[datetime, datetime]  # half-open [lo, hi), UTC, never empty


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Local times of day between which messages may go out: from `start` included
    to `end` excluded. A window with `start == end` is empty (it allows nothing)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")


@dataclass(frozen=True)
class DeliverySettings:
    """A site's delivery settings (SPEC §4), as the Django layer reads them from rows.

    `kind_channels` maps a kind to the channels the site enables for it; a kind that
    is absent is enabled on every channel, one mapped to an empty set is disabled.
    """

    zone: str = "UTC"
    email_sms_window: TimeWindow = TimeWindow(time(8), time(20))
    call_window: TimeWindow = TimeWindow(time(9), time(19))
    delivery_days: frozenset[Weekday] = ALL_DAYS
    daily_process_start: time = time(8)
    only_verified: bool = False
    require_opt_in: bool = False
    combine_siblings: bool = True
    cancellation_mode: CancellationMode = CancellationMode.BY_REQUEST
    cancellation_deadline_hours: int = 1
    track_cancellations: bool = True
    kind_channels: Mapping[Kind, frozenset[Channel]] = field(default_factory=dict)


def with_override(settings: DeliverySettings, override: Mapping) -> DeliverySettings:
    """A site's settings as one automated message overrides them (SPEC §4: "an
    automated message may override"): its own email/SMS window and delivery days.
    Quiet hours still clip the window (DeliveryPolicy does, whatever it is given).
    Keys the override lacks, or holds in an unreadable form, keep the site's value:
    a rule edited to nonsense must not stop its messages."""
    changes: dict = {}
    start, end = (
        _wall(override.get("email_sms_window_start")),
        _wall(override.get("email_sms_window_end")),
    )
    if start is not None and end is not None and start < end:
        changes["email_sms_window"] = TimeWindow(start, end)
    days = override.get("delivery_days")
    if isinstance(days, list):
        chosen = frozenset(d for d in Weekday if d.value in days)
        if chosen:
            changes["delivery_days"] = chosen
    return replace(settings, **changes) if changes else settings


def _wall(value: object) -> time | None:
    try:
        return time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


@cache
def zone_for(key: str) -> ZoneInfo:
    """The ZoneInfo for an IANA key, built once per process."""
    return ZoneInfo(key)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _at(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


class DeliveryPolicy:
    """A site's delivery settings compiled for fast, repeated questions.

    Every method takes aware datetimes and returns aware UTC datetimes. A
    `recipient_zone` of None means the recipient lives in the site's zone.
    """

    __slots__ = (
        "_cache",
        "_days",
        "_overridden",
        "_spans",
        "_windows",
        "memo",
        "memo_now",
        "settings",
        "zone",
    )

    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings
        self.zone = zone_for(settings.zone)
        # Each day's iso number once (Weekday.iso walks the enum): a policy is built
        # for every change that plans.
        isos = {d.iso for d in settings.delivery_days}
        self._days = tuple(i in isos for i in range(8))
        self._windows = {c: self._effective_window(c) for c in Channel}
        self._cache: dict[tuple, tuple[Interval, ...]] = {}
        self._spans: dict[int, tuple[datetime, datetime]] = {}
        #: Results of pure planning functions over this policy (see carebell.core.timing):
        #: the planner asks the same question for every contact of an appointment and
        #: for every appointment in the same slot.
        self.memo: dict[object, object] = {}
        self.memo_now: datetime | None = None
        self._overridden: dict[tuple, DeliveryPolicy] = {}

    def overridden(self, override: Mapping | None) -> DeliveryPolicy:
        """This policy as an automated message's `settings_override` changes it
        (`with_override`), compiled once per distinct override: the planner and the
        send-time checks ask for every message of the rule."""
        if not override:
            return self
        key = tuple(sorted((k, repr(v)) for k, v in override.items()))
        found = self._overridden.get(key)
        if found is None:
            settings = with_override(self.settings, override)
            found = self if settings == self.settings else DeliveryPolicy(settings)
            self._overridden[key] = found
        return found

    def _effective_window(self, channel: Channel) -> tuple[int, int] | None:
        # Quiet hours clip a wider configured window; an empty result (a window that only
        # touches quiet hours included) disables the channel.
        w = self.settings.call_window if channel is Channel.CALL else self.settings.email_sms_window
        start, end = _seconds(w.start), _seconds(w.end)
        if channel in PHONE_CHANNELS:
            start, end = max(start, _seconds(QUIET_START)), min(end, _seconds(QUIET_END))
        return (start, end) if start < end else None

    def local_date(self, at: datetime) -> date:
        """The site's calendar date at instant `at`."""
        return at.astimezone(self.zone).date()

    def day_span(self, day: date) -> tuple[datetime, datetime]:
        """The first instant of the site's local `day` and the first of the next day
        (a midnight that falls in a DST gap starts when the clocks jump)."""
        found = self._spans.get(day.toordinal())
        if found is None:
            nxt = day + timedelta(days=1)
            found = (self.local_instant(day, time(0)), self.local_instant(nxt, time(0)))
            self._spans[day.toordinal()] = found
        return found

    def first_allowed_on(
        self,
        channel: Channel,
        day: date,
        lo: datetime,
        hi: datetime,
        recipient_zone: ZoneInfo | None = None,
    ) -> datetime | None:
        """The earliest allowed instant in [lo, hi] whose wall date is the site's `day`."""
        for start, end in self.allowed_intervals(channel, day, recipient_zone):
            if end > lo:
                at = start if start > lo else lo
                return at if at <= hi else None
        return None

    def local_instant(self, day: date, wall: time, zone: ZoneInfo | None = None) -> datetime:
        """The first instant at or after wall time `wall` on `day` (in `zone`, default the
        site's): a nonexistent time moves forward to the end of the gap, an ambiguous one
        is its first occurrence."""
        z = zone or self.zone
        naive = datetime.combine(day, wall.replace(fold=0))
        first = naive.replace(tzinfo=z).astimezone(UTC)  # fold=0: the first occurrence
        if first.astimezone(z).replace(tzinfo=None) == naive:
            return first
        found = _wall_intervals(z, day, _seconds(wall), _DAY)
        return found[0][0] if found else first

    def is_allowed(
        self, channel: Channel, at: datetime, recipient_zone: ZoneInfo | None = None
    ) -> bool:
        """True when `channel` may deliver at instant `at` (see the module docstring).
        The same test as `why_not`, without building a reason (it is on the hot path)."""
        wall = at.astimezone(self.zone)
        window = self._windows[channel]
        if window is None or not self._days[wall.isoweekday()]:
            return False
        if not window[0] <= _time_of_day(wall) < window[1]:
            return False
        if channel in PHONE_CHANNELS and _other(recipient_zone, self.zone):
            return _in_quiet_hours_window(_time_of_day(at.astimezone(recipient_zone)))
        return True

    def why_not(
        self, channel: Channel, at: datetime, recipient_zone: ZoneInfo | None = None
    ) -> Reason | None:
        """None when `at` is allowed for `channel`, else the first reason it is not:
        not_delivery_day, quiet_hours or outside_window (an empty window allows no
        instant: outside_window, or quiet_hours when quiet hours emptied it)."""
        wall = at.astimezone(self.zone)
        if not self._days[wall.isoweekday()]:
            return reason(Code.NOT_DELIVERY_DAY, day=wall.date())
        window, tod = self._windows[channel], _time_of_day(wall)
        if window is None or not window[0] <= tod < window[1]:
            return self._outside(channel, tod, at)
        if channel in PHONE_CHANNELS and _other(recipient_zone, self.zone):
            return self._recipient_quiet(at, recipient_zone)
        return None

    def _recipient_quiet(self, at: datetime, recipient_zone: ZoneInfo) -> Reason | None:
        tod = _time_of_day(at.astimezone(recipient_zone))
        return None if _in_quiet_hours_window(tod) else reason(Code.QUIET_HOURS, at=at)

    def _outside(self, channel: Channel, tod: float, at: datetime) -> Reason:
        w = self.settings.call_window if channel is Channel.CALL else self.settings.email_sms_window
        configured = _seconds(w.start) <= tod < _seconds(w.end)
        if configured and channel in PHONE_CHANNELS:
            return reason(Code.QUIET_HOURS, at=at)
        return reason(Code.OUTSIDE_WINDOW, at=at, channel=channel)

    def allowed_intervals(
        self, channel: Channel, day: date, recipient_zone: ZoneInfo | None = None
    ) -> tuple[Interval, ...]:
        """The allowed instants of the site's local `day` as half-open UTC intervals
        [lo, hi), sorted, none empty and none touching the next."""
        if recipient_zone is None or recipient_zone is self.zone or channel not in PHONE_CHANNELS:
            key: tuple = (channel, day)
            recipient_zone = None
        else:
            key = (channel, day, recipient_zone.key)
        found = self._cache.get(key)
        if found is None:
            other = recipient_zone if _other(recipient_zone, self.zone) else None
            found = self._cache[key] = self._compute(channel, day, other)
        return found

    def _compute(self, channel: Channel, day: date, other: ZoneInfo | None) -> tuple[Interval, ...]:
        window = self._windows[channel]
        if window is None or not self._days[day.isoweekday()]:
            return ()
        own = _wall_intervals(self.zone, day, *window)
        if other is None:
            return own
        quiet = (_seconds(QUIET_START), _seconds(QUIET_END))
        near = [
            iv for d in range(-2, 3) for iv in _wall_intervals(other, day + timedelta(d), *quiet)
        ]
        return _intersect(own, near)

    def latest_allowed(
        self,
        channel: Channel,
        target: datetime,
        not_before: datetime,
        recipient_zone: ZoneInfo | None = None,
    ) -> datetime | None:
        """The latest allowed instant in [not_before, target], or None if there is none.

        `target` itself when it is allowed. Otherwise the message moves back to the last
        window before `target`, END_MARGIN before its end (the end is never allowed):
        19:59:00 for a window ending at 20:00 — but never before that window's start nor
        before `not_before`. So the result is always strictly before a window's end."""
        if not_before > target:
            return None
        # Start a day late: after a fold at midnight the next wall date begins before
        # the last instants of this one.
        day = self.local_date(target) + _ONE_DAY
        best: datetime | None = None
        for _ in range(MAX_SEARCH_DAYS):
            intervals = self.allowed_intervals(channel, day, recipient_zone)
            found = _latest_in(intervals, target, not_before)
            if found is not None and (best is None or found > best):
                best = found
            elif best is not None:
                break  # one more day looked at after the first find: done
            if self.day_span(day)[0] < not_before:
                break  # this day began before the lower bound: earlier days are out
            day -= _ONE_DAY
        return best if best is not None and best >= not_before else None

    def earliest_allowed(
        self,
        channel: Channel,
        at: datetime,
        not_after: datetime | None = None,
        recipient_zone: ZoneInfo | None = None,
    ) -> datetime | None:
        """The earliest allowed instant in [at, not_after] (unbounded above if None,
        within MAX_SEARCH_DAYS), or None if there is none: `at` itself when allowed,
        else the start of the next window (a start is allowed; an end never is)."""
        day = self.local_date(at) - _ONE_DAY
        last = day + _SEARCH
        if not_after is not None:
            last = min(last, self.local_date(not_after) + _ONE_DAY)
        best: datetime | None = None
        while day <= last:
            found = _earliest_in(self.allowed_intervals(channel, day, recipient_zone), at)
            if found is not None and (best is None or found < best):
                last = min(last, day + _ONE_DAY) if best is None else last
                best = found
            day += _ONE_DAY
        if best is None or (not_after is not None and best > not_after):
            return None
        return best


def _other(recipient_zone: ZoneInfo | None, zone: ZoneInfo) -> bool:
    return recipient_zone is not None and recipient_zone.key != zone.key


def _time_of_day(wall: datetime) -> float:
    return wall.hour * 3600 + wall.minute * 60 + wall.second + wall.microsecond / 1e6


def _in_quiet_hours_window(tod: float) -> bool:
    return _seconds(QUIET_START) <= tod < _seconds(QUIET_END)


def _latest_in(
    intervals: tuple[Interval, ...], target: datetime, not_before: datetime
) -> datetime | None:
    for lo, hi in reversed(intervals):
        if lo <= target:
            if target < hi:
                return target
            return max(lo, not_before, hi - END_MARGIN) if hi > not_before else None
    return None


def _earliest_in(intervals: tuple[Interval, ...], at: datetime) -> datetime | None:
    for lo, hi in intervals:
        if hi > at:
            return lo if lo > at else at
    return None


def _intersect(a: tuple[Interval, ...], b: list[Interval]) -> tuple[Interval, ...]:
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo < hi:  # windows that only touch share no instant
                out.append((lo, hi))
    return tuple(sorted(out))


@lru_cache(maxsize=65_536)
def _wall_intervals(zone: ZoneInfo, day: date, start: int, end: int) -> tuple[Interval, ...]:
    """The UTC instants whose wall clock in `zone` reads `day` at a time of day within
    [start, end) seconds, as half-open intervals. Exact across any DST transition."""
    base = (day.toordinal() - _EPOCH_ORDINAL) * _DAY
    out: list[Interval] = []
    for a, b, offset in _segments(zone, base):
        lo, hi = max(a, base + start - offset), min(b, base + end - offset)
        if lo < hi:
            out.append((_at(lo), _at(hi)))
    return tuple(_merge(out))


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for lo, hi in intervals:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _offset(zone: ZoneInfo, seconds: int) -> int:
    return int(datetime.fromtimestamp(seconds, zone).utcoffset().total_seconds())


def _segments(zone: ZoneInfo, base: int) -> list[tuple[int, int, int]]:
    """Pieces [a, b) of constant UTC offset covering every instant whose wall date could
    be the day starting at wall second `base` (offsets lie within −12 h … +14 h)."""
    lo, hi = base - 15 * 3600, base + _DAY + 13 * 3600
    pieces, a, off = [], lo, _offset(zone, lo)
    for probe in range(lo + 3600, hi + 1, 3600):
        nxt = _offset(zone, probe)
        if nxt != off:
            t = _transition(zone, probe - 3600, probe, off)
            pieces.append((a, t, off))
            a, off = t, nxt
    pieces.append((a, hi, off))
    return pieces


def _transition(zone: ZoneInfo, before: int, after: int, offset: int) -> int:
    # Binary search for the first second whose offset differs from `offset`.
    while after - before > 1:
        mid = (before + after) // 2
        if _offset(zone, mid) == offset:
            before = mid
        else:
            after = mid
    return after
