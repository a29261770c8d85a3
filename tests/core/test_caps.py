from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from carebell.core.caps import CapAction, SmsRecord, check_sms_cap
from carebell.core.reasons import Code
from carebell.core.vocab import Channel, Kind

NY = ZoneInfo("America/New_York")
AT = datetime(2024, 6, 10, 14, tzinfo=UTC)  # Monday 10:00 EDT


def sent(at, kind=Kind.APPT_REMINDER, pending=False, mid=None):
    return SmsRecord(at, kind, mid, pending)


def test_the_first_text_of_the_day_is_allowed():
    assert check_sms_cap(Kind.APPT_REMINDER, Channel.SMS, AT, [], NY).action is CapAction.ALLOW


def test_a_second_text_the_same_local_day_is_combined_with_a_pending_one():
    history = [sent(AT + timedelta(hours=2), pending=True, mid=7)]
    d = check_sms_cap(Kind.RX_READY, Channel.SMS, AT, history, NY)
    assert (d.action, d.combine_with) == (CapAction.COMBINE, 7)
    assert d.reasons[0].code is Code.CAP_COMBINED


def test_a_second_text_after_one_was_sent_is_deferred_to_the_next_local_day():
    d = check_sms_cap(Kind.APPT_REMINDER, Channel.SMS, AT, [sent(AT - timedelta(hours=1))], NY)
    assert d.action is CapAction.DEFER
    assert d.at == datetime(2024, 6, 11, 4, tzinfo=UTC)  # midnight EDT
    assert d.reasons[0].code is Code.CAP_DAILY


def test_the_day_is_the_recipients_local_day():
    late_sunday = datetime(2024, 6, 10, 2, tzinfo=UTC)  # Sunday 22:00 EDT
    d = check_sms_cap(Kind.APPT_REMINDER, Channel.SMS, AT, [sent(late_sunday)], NY)
    assert d.action is CapAction.ALLOW


def test_a_fourth_text_in_a_week_waits_until_the_week_has_room():
    history = [sent(AT - timedelta(days=n)) for n in (1, 3, 5)]
    d = check_sms_cap(Kind.APPT_REMINDER, Channel.SMS, AT, history, NY)
    assert d.action is CapAction.DEFER and d.reasons[0].code is Code.CAP_WEEKLY
    assert d.at == datetime(2024, 6, 12, 4, tzinfo=UTC)  # the text of 5 June leaves the week


def test_a_deferral_that_would_land_after_the_deadline_is_blocked_with_reasons():
    d = check_sms_cap(
        Kind.APPT_REMINDER, Channel.SMS, AT, [sent(AT)], NY, not_after=AT + timedelta(hours=5)
    )
    assert d.action is CapAction.BLOCK
    assert [r.code for r in d.reasons] == [Code.CAP_DAILY, Code.CAP_NO_ROOM]


def test_replies_and_codes_are_exempt():
    history = [sent(AT)]
    for kind in (Kind.VERIFICATION, Kind.INBOX_REPLY, Kind.KEYWORD_REPLY):
        d = check_sms_cap(kind, Channel.SMS, AT, history, NY)
        assert d.action is CapAction.ALLOW and d.reasons[0].code is Code.CAP_EXEMPT


def test_exempt_texts_do_not_count_toward_the_cap():
    history = [sent(AT, kind=Kind.VERIFICATION)]
    assert check_sms_cap(Kind.APPT_REMINDER, Channel.SMS, AT, history, NY).action is CapAction.ALLOW


def test_email_is_not_capped():
    d = check_sms_cap(Kind.APPT_REMINDER, Channel.EMAIL, AT, [sent(AT)], NY)
    assert d.action is CapAction.ALLOW
