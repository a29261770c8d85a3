from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebell.core.reasons import Code
from carebell.core.schedule import (
    RECALL_GRACE_DAYS,
    FillFacts,
    PharmacySettings,
    PrescriptionFacts,
    RecallFacts,
    birthday_in,
    plan_birthday,
    plan_daily,
    plan_pickup_confirmation,
    plan_pickup_reminders,
    plan_ready_notice,
    plan_recall,
    plan_review_request,
    plan_welcome,
    recall_due_after_visit,
    recall_due_at_age,
    recall_problem,
    refill_kind_on,
)
from carebell.core.vocab import (
    Channel,
    DeaSchedule,
    FillStep,
    Kind,
    PatientEvent,
    PrescriptionStatus,
    ReadyTrigger,
    Weekday,
)
from carebell.core.windows import DeliveryPolicy, DeliverySettings
from tests.core import strategies as S

NY = "America/New_York"
POLICY = DeliveryPolicy(DeliverySettings(zone=NY))
RX = PharmacySettings()
NOW = datetime(2024, 6, 1, tzinfo=UTC)
NEW_YEAR = datetime(2023, 1, 1, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


APPROVED_AT = utc(2024, 6, 3, 14)  # 10:00 EDT
LABEL_AT = utc(2024, 6, 3, 16)  # 12:00 EDT


def fill(step=FillStep.LABEL_PRINTED, **extra):
    steps = {FillStep.INSURANCE_APPROVED: APPROVED_AT, FillStep.LABEL_PRINTED: LABEL_AT, **extra}
    steps = {s: at for s, at in steps.items() if s.order <= step.order}
    return FillFacts(1, 2, 3, step, steps)


@pytest.mark.parametrize(
    ("trigger", "step", "at", "code"),
    [
        (ReadyTrigger.LABEL_PRINTED, FillStep.LABEL_PRINTED, LABEL_AT, None),
        (ReadyTrigger.INSURANCE_APPROVED, FillStep.LABEL_PRINTED, APPROVED_AT, None),
        (ReadyTrigger.INSURANCE_APPROVED, FillStep.INSURANCE_APPROVED, APPROVED_AT, None),
        (ReadyTrigger.LABEL_PRINTED, FillStep.INSURANCE_APPROVED, None, Code.TRIGGER_NOT_REACHED),
        (ReadyTrigger.VERIFIED_FOR_FILL, FillStep.LABEL_PRINTED, LABEL_AT, None),  # step skipped
        (ReadyTrigger.LABEL_PRINTED, FillStep.RETURNED_TO_STOCK, None, Code.RETURNED_TO_STOCK),
    ],
)
def test_ready_notice_fires_at_the_sites_trigger_step(trigger, step, at, code):
    settings_ = PharmacySettings(ready_trigger=trigger)
    result = plan_ready_notice(POLICY, Channel.SMS, fill(step), settings_, NOW)
    assert result.at == at
    assert [r.code for r in result.reasons] == ([code] if code else [])


def test_a_fill_ready_at_night_is_announced_when_the_window_opens():
    late = FillFacts(1, 2, 3, FillStep.LABEL_PRINTED, {FillStep.LABEL_PRINTED: utc(2024, 6, 4, 2)})
    result = plan_ready_notice(POLICY, Channel.SMS, late, RX, NOW)
    assert result.at == utc(2024, 6, 4, 12)
    assert result.reasons[0].code is Code.MOVED_LATER_TO_WINDOW


def test_a_fill_ready_as_the_window_closes_is_announced_the_next_morning():
    closing = utc(2024, 6, 4, 0)  # 20:00 EDT: the email/SMS window's end is not in it
    late = FillFacts(1, 2, 3, FillStep.LABEL_PRINTED, {FillStep.LABEL_PRINTED: closing})
    result = plan_ready_notice(POLICY, Channel.SMS, late, RX, NOW)
    assert result.at == utc(2024, 6, 4, 12)  # 08:00 EDT
    assert result.reasons[0].code is Code.MOVED_LATER_TO_WINDOW


def test_a_birthday_greeting_cannot_go_when_the_only_call_instant_is_the_windows_end():
    # 09:00 in New York is 21:00 in Shanghai: the call window and quiet hours only touch.
    day = date(2024, 6, 3)
    result = plan_birthday(
        POLICY, Channel.CALL, date(1990, 6, 3), day, NOW, S.ZoneInfo("Asia/Shanghai")
    )
    assert result.at is None and result.reasons[0].code is Code.NO_ALLOWED_TIME


def test_pickup_reminders_follow_the_configured_days_in_the_daily_batch():
    plans = plan_pickup_reminders(POLICY, Channel.SMS, fill(), RX, NOW)
    assert [p.at for p in plans] == [utc(2024, 6, 6, 12), utc(2024, 6, 10, 12)]


@pytest.mark.parametrize(
    ("step", "code"),
    [(FillStep.PICKED_UP, Code.PICKED_UP), (FillStep.RETURNED_TO_STOCK, Code.RETURNED_TO_STOCK)],
)
def test_pickup_reminders_stop_at_pickup_or_return_to_stock(step, code):
    plans = plan_pickup_reminders(POLICY, Channel.SMS, fill(step), RX, NOW)
    assert [p.at for p in plans] == [None, None]
    assert {p.reasons[0].code for p in plans} == {code}


def test_a_pickup_reminder_whose_day_passed_is_not_sent():
    plans = plan_pickup_reminders(POLICY, Channel.SMS, fill(), RX, utc(2024, 6, 8))
    assert plans[0].reasons[0].code is Code.TARGET_PASSED and plans[1].planned


def test_pickup_confirmation_follows_pickup():
    picked = fill(FillStep.PICKED_UP, **{FillStep.PICKED_UP: utc(2024, 6, 5, 15)})
    assert plan_pickup_confirmation(POLICY, Channel.SMS, picked, NOW).at == utc(2024, 6, 5, 15)
    result = plan_pickup_confirmation(POLICY, Channel.SMS, fill(), NOW)
    assert result.reasons[0].code is Code.NOT_PICKED_UP


def rx(**kw):
    base = {
        "prescription_id": 1,
        "patient_id": 2,
        "status": PrescriptionStatus.ACTIVE,
        "refills_remaining": 2,
        "last_fill_date": date(2024, 6, 1),
        "days_supply": 30,
    }
    return PrescriptionFacts(**{**base, **kw})


DUE_DAY = date(2024, 6, 28)  # due 2024-07-01, 3 days before
PAST_DUE_DAY = date(2024, 7, 8)  # 7 days after


@pytest.mark.parametrize(
    ("facts", "site", "day", "kind", "code"),
    [
        ({}, {}, DUE_DAY, Kind.REFILL_DUE, None),
        ({}, {}, PAST_DUE_DAY, Kind.REFILL_PAST_DUE, None),
        ({}, {}, date(2024, 7, 1), None, Code.NOT_DUE_TODAY),
        ({}, {"refill_when_due": False}, DUE_DAY, None, Code.NOT_DUE_TODAY),
        ({}, {"refill_when_past_due": False}, PAST_DUE_DAY, None, Code.NOT_DUE_TODAY),
        ({"status": PrescriptionStatus.TRANSFERRED}, {}, DUE_DAY, None, Code.RX_NOT_ACTIVE),
        ({"has_newer_fill": True}, {}, PAST_DUE_DAY, None, Code.REFILLED),
        ({"refills_remaining": 0}, {}, DUE_DAY, None, Code.NO_REFILLS_REMAINING),
        (
            {"refills_remaining": 0},
            {"refill_ask_prescriber": True},
            DUE_DAY,
            Kind.REFILL_ASK_PRESCRIBER,
            Code.ASK_PRESCRIBER,
        ),
        ({"maintenance": False}, {}, DUE_DAY, None, Code.NOT_MAINTENANCE),
        ({"maintenance": False}, {"refill_non_maintenance": True}, DUE_DAY, Kind.REFILL_DUE, None),
        ({"dea_schedule": DeaSchedule.C2}, {}, DUE_DAY, None, Code.C2_EXCLUDED),
        (
            {"dea_schedule": DeaSchedule.C2},
            {"refill_controlled": True},
            DUE_DAY,
            None,
            Code.C2_EXCLUDED,
        ),
        ({"dea_schedule": DeaSchedule.C2}, {"refill_c2": True}, DUE_DAY, Kind.REFILL_DUE, None),
        ({"dea_schedule": DeaSchedule.C4}, {}, DUE_DAY, None, Code.CONTROLLED_EXCLUDED),
        (
            {"dea_schedule": DeaSchedule.C4},
            {"refill_controlled": True},
            DUE_DAY,
            Kind.REFILL_DUE,
            None,
        ),
        ({"last_fill_date": None}, {}, DUE_DAY, None, Code.NOT_DUE_TODAY),
    ],
)
def test_refill_reminders_apply_every_filter(facts, site, day, kind, code):
    decision = refill_kind_on(rx(**facts), PharmacySettings(**site), day)
    assert decision.kind == kind
    assert [r.code for r in decision.reasons] == ([code] if code else [])


def test_c2_is_excluded_by_default():
    assert PharmacySettings().refill_c2 is False
    assert refill_kind_on(rx(dea_schedule=DeaSchedule.C2), RX, DUE_DAY).kind is None


def test_refill_reminders_go_in_the_daily_batch_after_the_process_start():
    p = DeliveryPolicy(DeliverySettings(zone=NY, daily_process_start=time(9, 30)))
    assert plan_daily(p, Channel.SMS, DUE_DAY, NOW).at == utc(2024, 6, 28, 13, 30)


def test_a_daily_message_on_a_non_delivery_day_waits_for_the_next_one():
    p = DeliveryPolicy(DeliverySettings(zone=NY, delivery_days=frozenset(Weekday) - {Weekday.SUN}))
    result = plan_daily(p, Channel.EMAIL, date(2024, 6, 2), NOW)  # a Sunday
    assert result.at == utc(2024, 6, 3, 12)


@pytest.mark.parametrize(
    ("sent", "opened", "at", "code"),
    [
        ((), False, utc(2024, 6, 6, 19), None),  # a day after pickup
        ((utc(2024, 6, 6, 12),), False, utc(2024, 6, 13, 12), None),
        ((utc(2024, 6, 6, 12),), True, None, Code.REVIEW_LINK_OPENED),
        ((utc(2024, 6, 6, 12), utc(2024, 6, 13, 12)), False, None, Code.REVIEW_MAX_SENDS),
    ],
)
def test_review_requests_wait_resend_and_stop(sent, opened, at, code):
    picked = utc(2024, 6, 5, 19)
    result = plan_review_request(POLICY, Channel.SMS, picked, sent, opened, RX, NOW)
    assert result.at == at
    assert [r.code for r in result.reasons] == ([code] if code else [])


def test_no_resend_means_one_review_request():
    s = PharmacySettings(review_resend_after_days=0)
    result = plan_review_request(POLICY, Channel.SMS, NOW, [NOW], False, s, NOW)
    assert result.reasons[0].code is Code.REVIEW_MAX_SENDS


@pytest.mark.parametrize(
    ("born", "year", "day"),
    [
        (date(2000, 2, 29), 2023, date(2023, 2, 28)),
        (date(2000, 2, 29), 2024, date(2024, 2, 29)),
        (date(2000, 2, 29), 2100, date(2100, 2, 28)),
        (date(1990, 7, 4), 2024, date(2024, 7, 4)),
    ],
)
def test_leap_day_birthdays_move_to_28_february_in_common_years(born, year, day):
    assert birthday_in(year, born) == day


def test_a_birthday_greeting_goes_in_the_morning_batch_on_the_day():
    result = plan_birthday(POLICY, Channel.SMS, date(2000, 2, 29), date(2023, 2, 28), NEW_YEAR)
    assert result.at == utc(2023, 2, 28, 13)
    assert [r.code for r in result.reasons] == [Code.BIRTHDAY_LEAP_DAY_MOVED]


def test_no_greeting_on_another_day():
    result = plan_birthday(POLICY, Channel.SMS, date(2000, 3, 1), date(2023, 2, 28), NEW_YEAR)
    assert result.reasons[0].code is Code.NOT_BIRTHDAY


def test_welcome_goes_on_the_sites_chosen_event():
    s = PharmacySettings(welcome_on=PatientEvent.CONSENTED)
    added = plan_welcome(POLICY, Channel.SMS, PatientEvent.ADDED, LABEL_AT, s, NOW)
    assert added.reasons[0].code is Code.WELCOME_ON_OTHER_EVENT
    assert (
        plan_welcome(POLICY, Channel.SMS, PatientEvent.CONSENTED, LABEL_AT, s, NOW).at == LABEL_AT
    )


@settings(max_examples=100, deadline=None)
@given(S.zones, st.dates(date(2020, 1, 1), date(2040, 12, 31)), S.channels)
def test_a_daily_batch_on_a_fold_or_gap_day_happens_once_on_that_day(key, day, channel):
    p = DeliveryPolicy(DeliverySettings(zone=key, daily_process_start=time(1, 30)))
    result = plan_birthday(
        p, channel, date(1980, day.month, day.day), day, datetime(2019, 1, 1, tzinfo=UTC)
    )
    if result.at is None:
        return
    wall = result.at.astimezone(p.zone)
    assert wall.date() == day
    assert p.is_allowed(channel, result.at)
    earlier = result.at - timedelta(microseconds=1)
    assert not p.is_allowed(channel, earlier) or earlier < p.local_instant(day, time(1, 30))


# Recalls


@pytest.mark.parametrize(
    ("visit", "months", "due"),
    [
        (date(2025, 3, 15), 12, date(2026, 3, 15)),
        (date(2025, 8, 31), 6, date(2026, 2, 28)),
        (date(2023, 8, 31), 6, date(2024, 2, 29)),
        (date(2025, 11, 30), 3, date(2026, 2, 28)),
        (date(2025, 1, 31), -2, date(2024, 11, 30)),
    ],
)
def test_a_recall_after_a_visit_is_due_the_same_day_months_later_or_the_months_end(
    visit, months, due
):
    assert recall_due_after_visit(visit, months) == due


def test_a_recall_by_age_is_due_on_that_birthday_and_a_leap_day_on_28_february():
    assert recall_due_at_age(date(2020, 5, 4), 4) == date(2024, 5, 4)
    assert recall_due_at_age(date(2020, 2, 29), 1) == date(2021, 2, 28)


DUE = date(2024, 6, 10)
MORNING = datetime(2024, 6, 10, 14, tzinfo=UTC)  # 10:00 in New York


def due_on(**facts) -> RecallFacts:
    return RecallFacts(1, DUE, **facts)


@pytest.mark.parametrize(
    ("facts", "day", "lead", "code"),
    [
        ({}, DUE, 0, None),
        ({}, DUE - timedelta(days=1), 0, Code.RECALL_NOT_DUE),
        ({}, DUE - timedelta(days=7), 7, None),
        ({}, DUE + timedelta(days=RECALL_GRACE_DAYS), 0, None),
        ({}, DUE + timedelta(days=RECALL_GRACE_DAYS + 1), 0, Code.RECALL_TOO_LATE),
        ({"closed": True}, DUE, 0, Code.RECALL_CLOSED),
        ({"booked_at": MORNING + timedelta(days=3)}, DUE, 0, Code.RECALL_BOOKED),
        ({"last_visit_on": DUE}, DUE, 0, Code.RECALL_VISITED),
        ({"last_visit_on": DUE - timedelta(days=1)}, DUE, 0, None),
    ],
)
def test_a_recall_is_due_from_its_day_while_open_unbooked_and_unseen(facts, day, lead, code):
    problem = recall_problem(due_on(**facts), day, lead)
    assert (problem.code if problem else None) is code


def test_a_due_recall_goes_in_the_daily_batch_of_the_day():
    plan = plan_recall(POLICY, Channel.SMS, due_on(), DUE, MORNING)
    assert plan.at == MORNING


def test_a_recall_not_due_is_skipped_with_its_reason():
    plan = plan_recall(POLICY, Channel.SMS, due_on(closed=True), DUE, MORNING)
    assert plan.at is None and plan.reasons[0].code is Code.RECALL_CLOSED
