from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from carebell.core.caps import (
    DAILY_LIMIT,
    WEEK_DAYS,
    WEEKLY_LIMIT,
    CapAction,
    SmsRecord,
    _fits,
    check_sms_cap,
    fit_sms_cap,
)
from carebell.core.reasons import Code, reason
from carebell.core.vocab import Channel, Kind

NY = ZoneInfo("America/New_York")
AT = datetime(2024, 6, 10, 14, tzinfo=UTC)  # Monday 10:00 EDT


def sent(at, kind=Kind.APPT_REMINDER, pending=False, mid=None, about=None):
    return SmsRecord(at, kind, mid, pending, about)


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


# fit_sms_cap: the caps together with the delivery window


def eight_am(at: datetime) -> datetime:
    """A window of 08:00 onwards in New York (the earliest allowed instant from `at`)."""
    local = at.astimezone(NY)
    if local.hour < 8:
        local = local.replace(hour=8, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def fit(history, *, at=AT, not_after=None, window=eight_am, about=None, kind=Kind.APPT_REMINDER):
    return fit_sms_cap(kind, Channel.SMS, at, history, NY, not_after, window, about)


def test_a_text_that_fits_the_caps_keeps_its_time():
    d = fit([sent(AT - timedelta(days=1))])
    assert (d.action, d.at, d.reasons) == (CapAction.ALLOW, AT, ())


def test_a_second_text_of_the_day_is_deferred_to_the_first_allowed_instant_of_the_next():
    d = fit([sent(AT - timedelta(hours=1))])
    assert d.action is CapAction.DEFER
    assert d.at == datetime(2024, 6, 11, 12, tzinfo=UTC)  # Tuesday 08:00 EDT
    assert d.reasons == (reason(Code.CAP_DAILY, day=AT.date(), at=d.at),)


def test_a_deferral_the_window_carries_onto_a_full_day_moves_on_to_a_day_with_room():
    wednesday = datetime(2024, 6, 12, 12, tzinfo=UTC)

    def not_on_tuesday(at):
        return max(eight_am(at), wednesday) if at < wednesday else eight_am(at)

    history = [sent(AT), sent(wednesday + timedelta(hours=2))]
    d = fit(history, window=not_on_tuesday)
    assert (d.action, d.at) == (CapAction.DEFER, datetime(2024, 6, 13, 12, tzinfo=UTC))


def test_a_text_with_no_room_before_its_deadline_is_blocked_with_reasons():
    d = fit([sent(AT, mid=1, about=("appointment", 1))], not_after=AT + timedelta(hours=20))
    assert d.action is CapAction.BLOCK
    assert [r.code for r in d.reasons] == [Code.CAP_DAILY, Code.CAP_NO_ROOM]


def test_a_text_with_no_room_is_combined_with_the_days_text_about_the_same_subject():
    about = ("appointment", 7)
    history = [sent(AT - timedelta(hours=1), mid="k1", about=about)]
    d = fit(history, not_after=AT + timedelta(hours=20), about=about)
    assert (d.action, d.combine_with) == (CapAction.COMBINE, "k1")
    assert [r.code for r in d.reasons] == [Code.CAP_COMBINED]


def test_a_deferral_that_the_window_moves_past_the_deadline_is_blocked():
    d = fit([sent(AT)], not_after=datetime(2024, 6, 11, 11, tzinfo=UTC))  # 07:00 EDT
    assert d.action is CapAction.BLOCK


def test_fitting_leaves_exempt_kinds_and_email_alone():
    assert fit([sent(AT)], kind=Kind.VERIFICATION).action is CapAction.ALLOW
    d = fit_sms_cap(Kind.APPT_REMINDER, Channel.EMAIL, AT, [sent(AT)], NY)
    assert d.action is CapAction.ALLOW


@settings(max_examples=500, deadline=None)
@given(
    days=st.lists(st.integers(-12, 12), max_size=12),
    day=st.integers(-3, 3),
)
def test_a_day_has_room_when_it_and_every_rolling_week_around_it_has(days, day):
    # The rule as SPEC §4 states it, day by day: what the sliding count must answer.
    base = datetime(2024, 6, 10).date()
    per_day = Counter(base + timedelta(days=d) for d in days)
    on = base + timedelta(days=day)
    weeks = [
        sum(per_day[on + timedelta(days=first + i)] for i in range(WEEK_DAYS))
        for first in range(-WEEK_DAYS + 1, 1)
    ]
    expected = per_day[on] < DAILY_LIMIT and all(w < WEEKLY_LIMIT for w in weeks)
    assert _fits(per_day, on) is expected
