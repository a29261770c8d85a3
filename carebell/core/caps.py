"""Frequency caps on automated SMS (SPEC §4, the healthcare exemption).

At most 1 automated appointment/treatment SMS per patient per day and 3 per rolling
week (the day and the 6 before it), per site, counted on the recipient's calendar.
Excess is combined with a pending text of the same day, or deferred to the first day
with room — never silently dropped: when no day with room comes before the deadline
the message is blocked with a reason staff can read. Replies and verification codes
are exempt (they are not in CAPPED_KINDS).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import CAPPED_KINDS, Channel, Kind

DAILY_LIMIT = 1
WEEKLY_LIMIT = 3
WEEK_DAYS = 7
#: How many days ahead a deferral may look.
MAX_DEFER_DAYS = 31


class CapAction(StrEnum):
    ALLOW = "allow"
    DEFER = "defer"
    COMBINE = "combine"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class SmsRecord:
    """An automated SMS to the patient from the site, sent or still pending."""

    at: datetime
    kind: Kind
    message_id: object = None
    pending: bool = False


@dataclass(frozen=True, slots=True)
class CapDecision:
    """ALLOW at `at`; DEFER to `at` (the recipient's local midnight of the first day
    with room — apply the delivery window after); COMBINE with `combine_with`; BLOCK."""

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
    return _defer(per_day, day, zone, not_after)


def _fits(per_day: Counter, day: date) -> bool:
    # A new text on `day` must keep every rolling week that contains it under the limit.
    if per_day[day] >= DAILY_LIMIT:
        return False
    for first in range(-WEEK_DAYS + 1, 1):
        start = day + timedelta(days=first)
        week = sum(per_day[start + timedelta(days=i)] for i in range(WEEK_DAYS))
        if week >= WEEKLY_LIMIT:
            return False
    return True


def _defer(per_day: Counter, day: date, zone: ZoneInfo, not_after: datetime | None) -> CapDecision:
    code = Code.CAP_DAILY if per_day[day] >= DAILY_LIMIT else Code.CAP_WEEKLY
    for ahead in range(1, MAX_DEFER_DAYS + 1):
        candidate = day + timedelta(days=ahead)
        when = _midnight(candidate, zone)
        if not_after is not None and when >= not_after:
            break
        if _fits(per_day, candidate):
            return CapDecision(CapAction.DEFER, when, reasons=(reason(code, day=day, at=when),))
    deadline = not_after if not_after is not None else _midnight(day, zone)
    return CapDecision(
        CapAction.BLOCK,
        reasons=(reason(code, day=day, at="-"), reason(Code.CAP_NO_ROOM, deadline=deadline)),
    )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # A zone may skip midnight (DST at 00:00): fold=0 then lands just after the gap.
    return datetime.combine(day, time(0), zone).astimezone(UTC)
