"""When appointment messages go out (SPEC §5.1).

Day offsets ("3 days before") go at the first allowed instant of the target day;
hour offsets ("2 hours before") at the exact instant if it is allowed. When that is not
possible the message moves to the latest allowed instant *before* the target — never
after the appointment, never before the planning time `now` — and is skipped, with a
reason, when no such instant remains. Windows are half-open (see carebell.core.windows):
a message moved back goes a minute before its window closes (19:59:00 for a 20:00 end),
never at the end itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import AppointmentStatus, Channel, OffsetUnit
from carebell.core.windows import DeliveryPolicy

_TICK = timedelta(microseconds=1)
_MIDNIGHT = time(0)
MEMO_LIMIT = 200_000
# Enum member access costs a descriptor call in Python 3.11: the hot path uses these.
_HOURS = OffsetUnit.HOURS
_GONE = frozenset({AppointmentStatus.CANCELLED, AppointmentStatus.DELETED})
_OPEN = frozenset(s for s in AppointmentStatus if s.is_open)


@dataclass(frozen=True, slots=True)
class AppointmentFacts:
    """An appointment as planning needs it; `start` is an aware datetime."""

    appointment_id: object
    patient_id: object
    site_id: object
    start: datetime
    status: AppointmentStatus = AppointmentStatus.BOOKED


@dataclass(frozen=True, slots=True)
class Offset:
    """How long before the appointment a message is due: `amount` days or hours."""

    amount: int
    unit: OffsetUnit = OffsetUnit.DAYS

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("an offset counts back from the appointment; it cannot be negative")


@dataclass(frozen=True, slots=True)
class Plan:
    """A planned instant (UTC) or None when skipped; `target` is the instant the rule
    aimed at (the last instant of the target day, for day offsets)."""

    at: datetime | None
    target: datetime | None
    reasons: tuple[Reason, ...] = ()

    @property
    def planned(self) -> bool:
        return self.at is not None


def skip(code: Code, aimed_at: datetime | None = None, /, **params: object) -> Plan:
    """A Plan that sends nothing, for `code` (`aimed_at` is the target it missed)."""
    return Plan(None, aimed_at, (reason(code, **params),))


def plan_appointment_message(
    policy: DeliveryPolicy,
    channel: Channel,
    appointment: AppointmentFacts,
    offset: Offset,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """When to send a message `offset` before `appointment` over `channel`, planning
    at `now`. Skips cancelled, closed and already-started appointments."""
    status = appointment.status
    if status not in _OPEN:
        if status in _GONE:
            return skip(Code.APPOINTMENT_CANCELLED)
        return skip(Code.APPOINTMENT_NOT_OPEN, status=status)
    start = appointment.start
    if start <= now:
        return skip(Code.APPOINTMENT_PASSED, start=start)
    memo = policy.memo if policy.memo_now is now else _memo_for(policy, now)
    if offset.unit is _HOURS:
        return _hours_memo(policy, memo, channel, start, offset.amount, now, recipient_zone)
    return _days_memo(policy, memo, channel, start, offset.amount, now, recipient_zone)


def _hours_memo(policy, memo, channel, start, hours, now, recipient_zone) -> Plan:
    key = (_HOURS, channel, start, hours, recipient_zone)
    found = memo.get(key)
    if found is None:
        found = plan_hour_offset(policy, channel, start, hours, now, recipient_zone)
        _store(memo, key, found)
    return found


def _days_memo(policy, memo, channel, start, days, now, recipient_zone) -> Plan:
    # A day offset depends on the appointment only through its date, unless the
    # message is due on the appointment's own day (then the start bounds it).
    start_day = memo.get(start)
    if start_day is None:
        start_day = policy.local_date(start).toordinal()
        _store(memo, start, start_day)
    key = (channel, start_day - days, start if days == 0 else None, recipient_zone)
    found = memo.get(key)
    if found is None:
        day = date.fromordinal(start_day - days)
        found = _plan_on_day(policy, channel, day, start, now, recipient_zone)
        _store(memo, key, found)
    return found


def _memo_for(policy: DeliveryPolicy, now: datetime) -> dict:
    # One memo per planning instant: a nightly run uses one `now`, so its keys repeat
    # (every contact of an appointment, every appointment in the same slot, every
    # appointment on the same day for day offsets).
    if policy.memo_now != now:
        policy.memo.clear()
    policy.memo_now = now
    return policy.memo


def _store(memo: dict, key: object, value: object) -> None:
    # Bounded so a long run over many distinct appointment times cannot grow it without
    # limit; clearing only costs recomputation.
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def plan_day_offset(
    policy: DeliveryPolicy,
    channel: Channel,
    start: datetime,
    days: int,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The first allowed instant on the site's date `days` before `start`, at or after
    `now` and before `start`; else the latest allowed instant before that day (moved
    earlier); else a skip (target_passed or no_allowed_time)."""
    day = policy.local_date(start) - timedelta(days=days)
    return _plan_on_day(policy, channel, day, start, now, recipient_zone)


def _plan_on_day(policy, channel, day, start, now, recipient_zone) -> Plan:
    day_start, next_start = policy.day_span(day)
    target = (next_start if next_start < start else start) - _TICK
    if target < now:
        return skip(Code.TARGET_PASSED, target, target=target)
    lo = now if now > day_start else day_start
    at = policy.first_allowed_on(channel, day, lo, target, recipient_zone)
    if at is not None:
        return Plan(at, target)
    return _move_earlier(policy, channel, target, day_start - _TICK, now, recipient_zone)


def plan_hour_offset(
    policy: DeliveryPolicy,
    channel: Channel,
    start: datetime,
    hours: int,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """Exactly `hours` before `start` when allowed and not before `now`; else the latest
    allowed instant before it (moved earlier); else a skip."""
    target = min(start - timedelta(hours=hours), start - _TICK)
    if target < now:
        return skip(Code.TARGET_PASSED, target, target=target)
    at = policy.latest_allowed(channel, target, now, recipient_zone)
    if at == target:
        return Plan(target, target)
    return _moved(at, target, now)


def _move_earlier(policy, channel, target, before, now, recipient_zone) -> Plan:
    at = policy.latest_allowed(channel, before, now, recipient_zone) if before >= now else None
    return _moved(at, target, now)


def _moved(at: datetime | None, target: datetime, now: datetime) -> Plan:
    if at is None:
        return skip(Code.NO_ALLOWED_TIME, target, not_before=now, target=target)
    return Plan(at, target, (reason(Code.OUTSIDE_WINDOW_MOVED_EARLIER, target=target, at=at),))


def change_reason(before: AppointmentFacts, after: AppointmentFacts) -> Reason | None:
    """Why the pending messages of an appointment must be cancelled and replanned
    after it changed from `before` to `after`, or None if they still stand."""
    if after.status in (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED):
        return reason(Code.APPOINTMENT_CANCELLED)
    if (before.start, before.site_id, before.patient_id) != (
        after.start,
        after.site_id,
        after.patient_id,
    ):
        return reason(Code.APPOINTMENT_MOVED)
    if before.status != after.status and not after.status.is_open:
        return reason(Code.APPOINTMENT_NOT_OPEN, status=after.status)
    return None
