"""Frequency caps on automated SMS (SPEC §4, the healthcare exemption).

At most 1 automated appointment/treatment SMS per patient per day and 3 per rolling
week (the day and the 6 before it), per site, counted on the recipient's calendar.
Excess is combined with a pending text of the same day, or deferred to the first day
with room — never silently dropped: when no day with room comes before the deadline
the message is blocked with a reason staff can read. Replies and verification codes
are exempt (they are not in CAPPED_KINDS).

`check_sms_cap` answers for one instant. `fit_sms_cap` is what the planner and the
sender ask: it also keeps to the delivery window (a deferral goes to the first allowed
instant of a day with room) and, when no day has room before the deadline, combines
the text with one of the same day about the same subject rather than block it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo

from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import CAPPED_KINDS, Channel, Kind

DAILY_LIMIT = 1
WEEKLY_LIMIT = 3
WEEK_DAYS = 7
#: How many days ahead a deferral may look.
MAX_DEFER_DAYS = 31

#: The first instant at or after the given one at which the text may be delivered
#: (window, delivery days, quiet hours), or None when there is none.
Window = Callable[[datetime], "datetime | None"]


class CapAction(StrEnum):
    ALLOW = "allow"
    DEFER = "defer"
    COMBINE = "combine"
    BLOCK = "block"


class SmsRecord(NamedTuple):
    """An automated SMS to the patient from the site, sent or still pending. `about`
    names its subject when known (e.g. ("appointment", 7)). A tuple: the planner keeps
    one per text for a whole pass."""

    at: datetime
    kind: Kind
    message_id: object = None
    pending: bool = False
    about: object = None


@dataclass(frozen=True, slots=True)
class CapDecision:
    """ALLOW at `at`; DEFER to `at`; COMBINE with `combine_with` (the text of the same
    day that covers this one, at `at`); BLOCK. `check_sms_cap` defers to the
    recipient's local midnight of the first day with room (apply the delivery window
    after); `fit_sms_cap` to the first allowed instant of that day."""

    action: CapAction
    at: datetime | None = None
    combine_with: object = None
    reasons: tuple[Reason, ...] = ()


def check_sms_cap(
    kind: Kind,
    channel: Channel,
    at: datetime,
    history: Iterable[SmsRecord],
    zone: ZoneInfo,
    not_after: datetime | None = None,
) -> CapDecision:
    """Whether a `kind` message over `channel` planned at `at` fits the caps, given the
    patient's other automated SMS from the site (`history`, sent and pending), in the
    recipient's `zone`. A deferral must land before `not_after` (e.g. the appointment)."""
    if channel is not Channel.SMS:
        return CapDecision(CapAction.ALLOW, at)
    if kind not in CAPPED_KINDS:
        return CapDecision(CapAction.ALLOW, at, reasons=(reason(Code.CAP_EXEMPT, kind=kind),))
    capped = [r for r in history if r.kind in CAPPED_KINDS]
    per_day = Counter(r.at.astimezone(zone).date() for r in capped)
    day = at.astimezone(zone).date()
    if _fits(per_day, day):
        return CapDecision(CapAction.ALLOW, at)
    same_day = [r for r in capped if r.pending and r.at.astimezone(zone).date() == day]
    if same_day:
        first = min(same_day, key=lambda r: r.at)
        return CapDecision(
            CapAction.COMBINE, first.at, first.message_id, (reason(Code.CAP_COMBINED),)
        )
    return _defer_or_block(per_day, day, zone, not_after, None)


def fit_sms_cap(
    kind: Kind,
    channel: Channel,
    at: datetime,
    history: Iterable[SmsRecord],
    zone: ZoneInfo,
    not_after: datetime | None = None,
    window: Window | None = None,
    about: object = None,
) -> CapDecision:
    """Where a `kind` text planned at `at` (an allowed instant) may go under the caps,
    given the patient's other automated texts from the site (`history`) in the
    recipient's `zone`: ALLOW at `at`; else DEFER to the first instant `window` allows
    on the first later day with room, before `not_after`; else COMBINE with a text of
    the same day about the same subject (`about`), which already tells the patient;
    else BLOCK. Every answer but ALLOW says why (cap_daily or cap_weekly and where it
    went, cap_combined, cap_no_room)."""
    if channel is not Channel.SMS or kind not in CAPPED_KINDS:
        return check_sms_cap(kind, channel, at, (), zone)
    capped = [r for r in history if r.kind in CAPPED_KINDS]
    if not capped:  # the common case: nothing to count
        return CapDecision(CapAction.ALLOW, at)
    per_day = Counter(r.at.astimezone(zone).date() for r in capped)
    day = at.astimezone(zone).date()
    if _fits(per_day, day):
        return CapDecision(CapAction.ALLOW, at)
    found = _defer_or_block(per_day, day, zone, not_after, window)
    if found.action is CapAction.BLOCK and about is not None:
        same = [r for r in capped if r.about == about and r.at.astimezone(zone).date() == day]
        if same:
            first = min(same, key=lambda r: r.at)
            return CapDecision(
                CapAction.COMBINE, first.at, first.message_id, (reason(Code.CAP_COMBINED),)
            )
    return found


def _fits(per_day: Counter, day: date) -> bool:
    # A new text on `day` must keep every rolling week that contains it under the limit.
    if per_day[day] >= DAILY_LIMIT:
        return False
    # Those weeks cover the days `span` either side of `day`: count them once, then
    # slide the week along (the planner asks this for every text of a pass, and for
    # every day a deferral looks at).
    span = WEEK_DAYS - 1
    near = [0] * (2 * span + 1)
    for when, count in per_day.items():
        offset = (when - day).days
        if -span <= offset <= span:
            near[offset + span] += count
    week = sum(near[:WEEK_DAYS])
    if week >= WEEKLY_LIMIT:
        return False
    for last in range(WEEK_DAYS, len(near)):
        week += near[last] - near[last - WEEK_DAYS]
        if week >= WEEKLY_LIMIT:
            return False
    return True


def _defer_or_block(
    per_day: Counter, day: date, zone: ZoneInfo, not_after: datetime | None, window
) -> CapDecision:
    code = Code.CAP_DAILY if per_day[day] >= DAILY_LIMIT else Code.CAP_WEEKLY
    when = _first_room(per_day, day, zone, not_after, window)
    if when is not None:
        return CapDecision(CapAction.DEFER, when, reasons=(reason(code, day=day, at=when),))
    deadline = not_after if not_after is not None else _midnight(day, zone)
    return CapDecision(
        CapAction.BLOCK,
        reasons=(reason(code, day=day, at="-"), reason(Code.CAP_NO_ROOM, deadline=deadline)),
    )


def _first_room(
    per_day: Counter, day: date, zone: ZoneInfo, not_after: datetime | None, window
) -> datetime | None:
    """The first instant after `day` on a day with room (and, with a `window`, allowed
    there), before `not_after`; None when there is none within MAX_DEFER_DAYS."""
    candidate, last = day + timedelta(days=1), day + timedelta(days=MAX_DEFER_DAYS)
    while candidate <= last:
        if not _fits(per_day, candidate):
            candidate += timedelta(days=1)
            continue
        when = _midnight(candidate, zone)
        if window is not None:
            when = window(when)
        if when is None or (not_after is not None and when >= not_after):
            return None
        # The window may move the text on to a later day (not a delivery day, say):
        # that day must have room too.
        landed = when.astimezone(zone).date()
        if landed == candidate or _fits(per_day, landed):
            return when
        candidate = landed + timedelta(days=1)
    return None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # A zone may skip midnight (DST at 00:00): fold=0 then lands just after the gap.
    return datetime.combine(day, time(0), zone).astimezone(UTC)
