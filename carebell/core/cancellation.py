"""A patient's request to cancel an appointment (SPEC §5.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import AppointmentStatus, CancellationMode, Kind

MIN_DEADLINE_HOURS = 1
MAX_DEADLINE_HOURS = 24


class CancellationEffect(StrEnum):
    """What the Django layer does after a decision."""

    CANCEL_APPOINTMENT = "cancel_appointment"  # automatic mode: cancel in carebell
    EMIT_CANCELLATION_EVENT = "emit_cancellation_event"  # tell the source system (§9)
    RECORD_REQUEST = "record_request"  # by-request mode: staff act on it
    STOP_MESSAGES = "stop_messages"  # cancel the appointment's pending messages
    ACKNOWLEDGE = "acknowledge"  # send appt_cancel_ack
    TELL_TO_CALL = "tell_to_call"  # send appt_cancel_refused with the site's phone
    NOTIFY_DEPARTMENT = "notify_department"  # staff notification (track cancellations)


@dataclass(frozen=True, slots=True)
class CancellationDecision:
    accepted: bool
    effects: frozenset[CancellationEffect]
    reply_kind: Kind
    reasons: tuple[Reason, ...]


def check_deadline_hours(hours: int) -> int:
    """`hours` if it is a valid cancellation deadline (1–24), else ValueError."""
    if not MIN_DEADLINE_HOURS <= hours <= MAX_DEADLINE_HOURS:
        raise ValueError(f"the cancellation deadline must be 1–24 hours, not {hours}")
    return hours


def decide_cancellation(
    mode: CancellationMode,
    deadline_hours: int,
    now: datetime,
    start: datetime,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    track: bool = True,
) -> CancellationDecision:
    """Accept a cancel request received at `now` when it is at least `deadline_hours`
    before `start`: cancel the appointment (automatic) or record the request
    (by_request); either way stop its messages and acknowledge. Later requests are
    refused: the contact is told to call, nothing else changes. With `track` the
    department is notified of every request, accepted or not (a late one is still a
    patient who says they won't come)."""
    check_deadline_hours(deadline_hours)
    notify = {CancellationEffect.NOTIFY_DEPARTMENT} if track else set()
    if status in (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED):
        return _accepted({CancellationEffect.ACKNOWLEDGE}, Code.APPOINTMENT_CANCELLED)
    if now >= start:
        return _refused(notify, reason(Code.APPOINTMENT_PASSED, start=start))
    if start - now < timedelta(hours=deadline_hours):
        return _refused(notify, reason(Code.CANCEL_TOO_LATE, deadline_hours=deadline_hours))
    effects = {CancellationEffect.STOP_MESSAGES, CancellationEffect.ACKNOWLEDGE, *notify}
    if mode is CancellationMode.AUTOMATIC:
        effects |= {
            CancellationEffect.CANCEL_APPOINTMENT,
            CancellationEffect.EMIT_CANCELLATION_EVENT,
        }
        return _accepted(effects, Code.CANCEL_ACCEPTED)
    return _accepted(effects | {CancellationEffect.RECORD_REQUEST}, Code.CANCEL_REQUEST_RECORDED)


def _accepted(effects: set, code: Code) -> CancellationDecision:
    return CancellationDecision(True, frozenset(effects), Kind.APPT_CANCEL_ACK, (reason(code),))


def _refused(notify: set, why: Reason) -> CancellationDecision:
    effects = frozenset({CancellationEffect.TELL_TO_CALL, *notify})
    return CancellationDecision(False, effects, Kind.APPT_CANCEL_REFUSED, (why,))
