from datetime import UTC, datetime, timedelta

import pytest

from carebell.core.cancellation import CancellationEffect as E
from carebell.core.cancellation import check_deadline_hours, decide_cancellation
from carebell.core.reasons import Code
from carebell.core.vocab import AppointmentStatus, CancellationMode, Kind

START = datetime(2024, 6, 10, 13, tzinfo=UTC)
AUTO, BY_REQUEST = CancellationMode.AUTOMATIC, CancellationMode.BY_REQUEST


@pytest.mark.parametrize(
    ("mode", "deadline", "before", "accepted", "code"),
    [
        (AUTO, 1, timedelta(hours=1), True, Code.CANCEL_ACCEPTED),
        (AUTO, 1, timedelta(minutes=59), False, Code.CANCEL_TOO_LATE),
        (BY_REQUEST, 1, timedelta(hours=2), True, Code.CANCEL_REQUEST_RECORDED),
        (BY_REQUEST, 24, timedelta(hours=24), True, Code.CANCEL_REQUEST_RECORDED),
        (BY_REQUEST, 24, timedelta(hours=23, minutes=59), False, Code.CANCEL_TOO_LATE),
        (AUTO, 24, timedelta(0), False, Code.APPOINTMENT_PASSED),
    ],
)
def test_the_deadline_decides_whether_a_cancellation_is_accepted(
    mode, deadline, before, accepted, code
):
    decision = decide_cancellation(mode, deadline, START - before, START)
    assert decision.accepted is accepted
    assert decision.reasons[0].code is code


def test_automatic_mode_cancels_and_tells_the_source_system():
    d = decide_cancellation(AUTO, 1, START - timedelta(days=1), START)
    assert d.effects == {
        E.CANCEL_APPOINTMENT,
        E.EMIT_CANCELLATION_EVENT,
        E.STOP_MESSAGES,
        E.ACKNOWLEDGE,
        E.NOTIFY_DEPARTMENT,
    }
    assert d.reply_kind is Kind.APPT_CANCEL_ACK


def test_by_request_mode_records_the_request_and_stops_messages():
    d = decide_cancellation(BY_REQUEST, 1, START - timedelta(days=1), START, track=False)
    assert d.effects == {E.RECORD_REQUEST, E.STOP_MESSAGES, E.ACKNOWLEDGE}


def test_a_late_request_changes_nothing_but_tells_the_contact_to_call():
    d = decide_cancellation(AUTO, 4, START - timedelta(hours=3), START, track=False)
    assert d.effects == {E.TELL_TO_CALL}
    assert d.reply_kind is Kind.APPT_CANCEL_REFUSED
    assert "4 h" in d.reasons[0].message


def test_an_already_cancelled_appointment_is_just_acknowledged():
    d = decide_cancellation(AUTO, 1, START - timedelta(days=1), START, AppointmentStatus.CANCELLED)
    assert d.accepted and d.effects == {E.ACKNOWLEDGE}


@pytest.mark.parametrize("hours", [0, 25, -1])
def test_deadlines_outside_1_to_24_hours_are_refused(hours):
    with pytest.raises(ValueError, match="1–24"):
        check_deadline_hours(hours)
