"""Planning the daily batch: pickup reminders, refill reminders, review requests and
birthdays, once a day after the site's daily process start."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.appointments.models import Recall
from carebell.core.reasons import Code, reason
from carebell.core.vocab import FillStep, Kind
from carebell.messaging.models import MessageEvent, OutboxMessage, PlannerLease
from carebell.planning import daily
from carebell.planning.policies import PolicyCache
from carebell.planning.runner import plan_once
from tests import factories
from tests.messaging.engine_setup import NOW, enable
from tests.planning.test_planning_events import (
    DAY,
    HOUR,
    reachable,
    ready_fill,
    run,
    settings,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 25)  # NOW in New York


def rerun_daily(now=NOW) -> list:
    """Forget that the daily batch ran, and run a planner pass."""
    PlannerLease.objects.filter(name__startswith="daily:").delete()
    return run(now)


def refill(patient, due: dt.date, *, days_supply=30, **rx):
    """A prescription whose only fill, picked up, runs out on `due`."""
    filled_on = due - dt.timedelta(days=days_supply)
    prescription = factories.make_prescription(patient, days_supply=days_supply, **rx)
    picked = dt.datetime.combine(filled_on, dt.time(12), dt.UTC)
    factories.make_fill(
        prescription, filled_on=filled_on, step=FillStep.PICKED_UP, picked_up_at=picked
    )
    return prescription


def kinds() -> list[tuple[str, str]]:
    return sorted(OutboxMessage.objects.values_list("kind", "channel"))


# The daily batch's bookkeeping


def test_the_daily_batch_is_due_after_the_process_start_once_a_local_day(pharmacy):
    policy = PolicyCache().for_site(pharmacy)
    early = dt.datetime(2026, 11, 25, 7, 59, tzinfo=pharmacy.zone)
    assert not daily.is_due(pharmacy, early, policy)
    assert daily.is_due(pharmacy, NOW, policy)
    daily.mark_done(pharmacy, NOW, policy)
    assert not daily.is_due(pharmacy, NOW + 10 * HOUR, policy)
    assert daily.is_due(pharmacy, NOW + DAY, policy)


def test_a_planner_pass_runs_the_daily_batch_only_once_a_day(pharmacy):
    enable(pharmacy, Kind.BIRTHDAY)
    patient = factories.make_patient(pharmacy, birth_date=dt.date(2015, 11, 25))
    reachable(patient, "birthday", "email")
    assert [d.kind for d in run()] == ["birthday"]
    assert run(NOW + HOUR) == []
    assert OutboxMessage.objects.count() == 1


def test_running_the_daily_batch_again_stores_nothing_new(pharmacy):
    for kind in (Kind.RX_PICKUP_REMINDER, Kind.REFILL_DUE, Kind.REVIEW_REQUEST, Kind.BIRTHDAY):
        enable(pharmacy, kind)
    patient = factories.make_patient(pharmacy, birth_date=dt.date(2015, 11, 25))
    for category in ("rx_ready", "refill_reminder", "review", "birthday"):
        reachable(patient, category, mobile="+12025550160")
    ready_fill(patient, NOW - 3 * DAY)
    refill(patient, TODAY + dt.timedelta(days=3))
    ready_fill(patient, NOW - DAY - HOUR, step=FillStep.PICKED_UP, picked_up_at=NOW - DAY - HOUR)
    run()
    stored = kinds()
    rerun_daily(NOW + HOUR)
    assert kinds() == stored
    assert {k for k, _ in stored} == {
        "rx_pickup_reminder",
        "refill_due",
        "review_request",
        "birthday",
    }


# Pickup reminders


def test_pickup_reminders_go_on_each_configured_day_after_ready(pharmacy):
    enable(pharmacy, Kind.RX_PICKUP_REMINDER)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "email")
    three, four, seven = (ready_fill(patient, NOW - n * DAY) for n in (3, 4, 7))
    run()
    rows = OutboxMessage.objects.filter(kind="rx_pickup_reminder")
    assert rows.get().entity_ids == [seven.id, three.id]
    assert rows.get().planned_at == NOW
    assert four.id not in rows.get().entity_ids


def test_a_picked_up_fill_gets_no_pickup_reminder(pharmacy):
    enable(pharmacy, Kind.RX_PICKUP_REMINDER)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready")
    ready_fill(patient, NOW - 3 * DAY, step=FillStep.PICKED_UP, picked_up_at=NOW - DAY)
    ready_fill(
        patient, NOW - 3 * DAY, step=FillStep.RETURNED_TO_STOCK, returned_to_stock_at=NOW - DAY
    )
    run()
    assert OutboxMessage.objects.count() == 0


def test_a_pickup_reminder_planned_before_the_process_start_waits_for_it(pharmacy):
    enable(pharmacy, Kind.RX_PICKUP_REMINDER)
    settings(pharmacy, daily_process_start=dt.time(11))
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "email")
    ready_fill(patient, NOW - 3 * DAY)
    assert run() == []
    run(NOW + 2 * HOUR)
    assert OutboxMessage.objects.get().planned_at == NOW + 2 * HOUR


# Refill reminders


def test_a_refill_reminder_goes_days_before_the_due_date(pharmacy):
    rule = enable(pharmacy, Kind.REFILL_DUE)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "refill_reminder", "email")
    due = TODAY + dt.timedelta(days=3)
    prescription = refill(patient, due)
    refill(patient, due + dt.timedelta(days=1))
    run()
    message = OutboxMessage.objects.get()
    assert (message.kind, message.entity_type, message.entity_id) == (
        "refill_due",
        "prescription",
        prescription.id,
    )
    assert message.event_at == dt.datetime.combine(due, dt.time(0), pharmacy.zone)
    assert message.planned_at == NOW
    assert message.dedupe_key == (
        f"r{rule.id}:refill_due:x{prescription.id}@{due.isoformat()}:email:"
        f"p{patient.id}@example.org"
    )


def test_a_past_due_reminder_goes_days_after_the_due_date(pharmacy):
    enable(pharmacy, Kind.REFILL_DUE)
    enable(pharmacy, Kind.REFILL_PAST_DUE)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "refill_reminder", "email")
    refill(patient, TODAY - dt.timedelta(days=7))
    run()
    assert kinds() == [("refill_past_due", "email")]


def test_several_prescriptions_due_the_same_day_share_one_message(pharmacy):
    enable(pharmacy, Kind.REFILL_DUE)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "refill_reminder", "sms")
    due = TODAY + dt.timedelta(days=3)
    first, second = refill(patient, due), refill(patient, due, days_supply=90)
    run()
    assert OutboxMessage.objects.get().entity_ids == [first.id, second.id]


def test_a_refilled_prescription_gets_no_reminder(pharmacy):
    enable(pharmacy, Kind.REFILL_DUE)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "refill_reminder")
    prescription = refill(patient, TODAY + dt.timedelta(days=3))
    factories.make_fill(prescription, filled_on=TODAY, step=FillStep.RECEIVED)
    run()
    assert OutboxMessage.objects.count() == 0


@pytest.mark.parametrize(
    ("drug", "switch", "code"),
    [
        ({"dea_schedule": "C2"}, "refill_c2", Code.C2_EXCLUDED),
        ({"dea_schedule": "C4"}, "refill_controlled", Code.CONTROLLED_EXCLUDED),
        ({"is_maintenance": False}, "refill_non_maintenance", Code.NOT_MAINTENANCE),
    ],
)
def test_drug_filters_skip_a_refill_reminder_until_the_site_allows_it(pharmacy, drug, switch, code):
    enable(pharmacy, Kind.REFILL_DUE)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "refill_reminder", "email")
    refill(patient, TODAY + dt.timedelta(days=3), **drug)
    [skipped] = run()
    assert skipped.status == "skipped" and [r.code for r in skipped.reasons] == [code]
    assert OutboxMessage.objects.count() == 0
    settings(pharmacy, **{switch: True})
    rerun_daily()
    assert kinds() == [("refill_due", "email")]


def test_without_refills_only_the_ask_your_prescriber_rule_sends(pharmacy):
    enable(pharmacy, Kind.REFILL_DUE)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "refill_reminder", "email")
    refill(patient, TODAY + dt.timedelta(days=3), refills_remaining=0)
    [skipped] = run()
    assert [r.code for r in skipped.reasons] == [Code.NO_REFILLS_REMAINING]
    enable(pharmacy, Kind.REFILL_ASK_PRESCRIBER)
    [asked] = rerun_daily()
    assert kinds() == [("refill_ask_prescriber", "email")]
    assert Code.ASK_PRESCRIBER in {r.code for r in asked.reasons}


# Review requests


def picked_up_yesterday(pharmacy):
    enable(pharmacy, Kind.REVIEW_REQUEST)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "review", "email")
    at = NOW - DAY - HOUR
    return ready_fill(patient, at - HOUR, step=FillStep.PICKED_UP, picked_up_at=at)


def test_a_review_request_goes_the_configured_delay_after_pickup(pharmacy):
    fill = picked_up_yesterday(pharmacy)
    run()
    message = OutboxMessage.objects.get()
    assert (message.kind, message.entity_id, message.planned_at) == (
        "review_request",
        fill.id,
        NOW,
    )


def test_a_review_request_is_not_sent_before_its_delay(pharmacy):
    picked_up_yesterday(pharmacy)
    settings(pharmacy, review_delay_hours=72)
    run()
    assert OutboxMessage.objects.count() == 0


def test_an_unopened_review_request_is_resent_up_to_the_maximum(pharmacy):
    picked_up_yesterday(pharmacy)
    run()
    OutboxMessage.objects.update(status="delivered", sent_at=NOW)
    assert rerun_daily(NOW + 3 * DAY) == []
    rerun_daily(NOW + 7 * DAY)
    assert OutboxMessage.objects.count() == 2
    OutboxMessage.objects.update(status="delivered", sent_at=NOW + 7 * DAY)
    [skipped] = rerun_daily(NOW + 14 * DAY)
    assert [r.code for r in skipped.reasons] == [Code.REVIEW_MAX_SENDS]
    assert OutboxMessage.objects.count() == 2


def test_an_opened_review_link_stops_the_resends(pharmacy):
    picked_up_yesterday(pharmacy)
    run()
    OutboxMessage.objects.update(status="delivered", sent_at=NOW)
    message = OutboxMessage.objects.get()
    MessageEvent.objects.create(
        message=message, at=NOW + HOUR, status="delivered", note=daily.REVIEW_LINK_OPENED
    )
    [skipped] = rerun_daily(NOW + 7 * DAY)
    assert [r.code for r in skipped.reasons] == [Code.REVIEW_LINK_OPENED]
    assert OutboxMessage.objects.count() == 1


# Birthdays


def test_a_birthday_greeting_goes_on_the_birthday(pharmacy):
    rule = enable(pharmacy, Kind.BIRTHDAY)
    patient = factories.make_patient(pharmacy, birth_date=dt.date(2015, 11, 25))
    factories.make_patient(pharmacy, birth_date=dt.date(2015, 11, 26))
    reachable(patient, "birthday", "email")
    run()
    message = OutboxMessage.objects.get()
    assert (message.entity_type, message.entity_id, message.planned_at) == (
        "patient",
        patient.id,
        NOW,
    )
    assert message.dedupe_key.startswith(f"r{rule.id}:birthday:p{patient.id}@2026:email:")


@pytest.mark.parametrize(
    ("day", "greeted"),
    [
        (dt.date(2026, 2, 28), True),
        (dt.date(2026, 3, 1), False),
        (dt.date(2028, 2, 28), False),
        (dt.date(2028, 2, 29), True),
    ],
)
def test_a_leap_day_birthday_is_greeted_on_28_february_in_common_years(site, day, greeted):
    enable(site, Kind.BIRTHDAY)
    patient = factories.make_patient(site, birth_date=dt.date(2012, 2, 29))
    reachable(patient, "birthday", "email")
    decisions = run(dt.datetime.combine(day, dt.time(10), site.zone))
    assert OutboxMessage.objects.count() == int(greeted)
    moved = Code.BIRTHDAY_LEAP_DAY_MOVED in {r.code for d in decisions for r in d.reasons}
    assert moved == (greeted and day.year == 2026)


# SMS frequency caps


def test_a_second_automated_text_the_same_day_is_deferred_to_the_next(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    enable(pharmacy, Kind.REFILL_DUE)
    patient = factories.make_patient(pharmacy)
    reachable(patient, "rx_ready", "sms", mobile="+12025550170")
    reachable(patient, "refill_reminder", "sms", mobile="+12025550170")
    ready_fill(patient)
    refill(patient, TODAY + dt.timedelta(days=3))
    decisions = run()
    planned = dict(OutboxMessage.objects.values_list("kind", "planned_at"))
    assert planned == {
        "rx_ready": NOW,
        "refill_due": dt.datetime(2026, 11, 26, 8, 0, tzinfo=pharmacy.zone),
    }
    [deferred] = [d for d in decisions if d.kind == "refill_due" and d.planned]
    assert Code.CAP_DAILY in {r.code for r in deferred.reasons}
    rerun_daily(NOW + HOUR)
    assert OutboxMessage.objects.count() == 2


# Set-based


def busy_pharmacy(pharmacy, patients: int) -> None:
    for n in range(patients):
        patient = factories.make_patient(pharmacy, birth_date=dt.date(2015, 11, 25))
        for category in ("rx_ready", "refill_reminder", "review", "birthday", "welcome"):
            reachable(patient, category, mobile=f"+120255501{n:02d}")
        ready_fill(patient)
        ready_fill(patient, NOW - 3 * DAY)
        refill(patient, TODAY + dt.timedelta(days=3))
        ready_fill(patient, NOW - DAY - HOUR, step=FillStep.PICKED_UP, picked_up_at=NOW - DAY)


def test_planning_costs_the_same_queries_for_few_or_many_patients(
    pharmacy, other_org_site, monkeypatch
):
    from carebell.outbox import _copy

    # The planner's own statements, not the writer's: a few rows take one INSERT where
    # many take the COPY path, so both sites go the COPY way here.
    monkeypatch.setattr(_copy, "FEW", 0)
    for site, patients in ((pharmacy, 2), (other_org_site, 12)):
        for kind in (*daily.EVENT_KINDS, *daily.DAILY_KINDS):
            enable(site, kind)
        busy_pharmacy(site, patients)
    counts = []
    for site in (pharmacy, other_org_site):
        with CaptureQueriesContext(connection) as queries:
            plan_once(now=NOW, site_ids=[site.id])
        counts.append(len(queries))
    assert counts[0] == counts[1] < 60
    assert OutboxMessage.objects.filter(site=other_org_site).count() > 12 * 4


# Recalls (SPEC §5.1)


def recall_rule(site, offsets=None, **filters):
    rule = enable(site, Kind.RECALL, offsets)
    rule.filters = filters
    rule.save()
    return rule


def due_recall(patient, due=TODAY, **fields):
    return Recall.objects.create(
        site=patient.site, patient=patient, reason="Annual well visit", due_on=due, **fields
    )


def recalls():
    return OutboxMessage.objects.filter(kind="recall")


def test_a_patient_due_for_a_recall_gets_one_message_on_the_due_day(site):
    rule = recall_rule(site)
    patient = factories.make_patient(site)
    reachable(patient, "recalls", "sms")
    recall = due_recall(patient)
    decisions = run()
    message = recalls().get()
    assert (message.entity_type, message.entity_id, message.channel) == ("recall", recall.id, "sms")
    assert message.planned_at == NOW
    assert message.event_at == dt.datetime.combine(TODAY, dt.time(0), site.zone)
    assert message.dedupe_key.startswith(f"r{rule.id}:recall:c{recall.id}@{TODAY.isoformat()}:")
    [planned] = [d for d in decisions if d.kind == "recall"]
    assert reason(Code.RECALL_DUE, what="Annual well visit", due=TODAY) in planned.reasons


def test_a_recall_is_not_announced_again_the_next_day(site):
    recall_rule(site)
    patient = factories.make_patient(site)
    reachable(patient, "recalls", "sms")
    due_recall(patient)
    run()
    OutboxMessage.objects.update(status="delivered", sent_at=NOW)
    rerun_daily(NOW + DAY)
    rerun_daily(NOW + 2 * DAY)
    assert recalls().count() == 1


def test_a_recall_is_announced_on_its_day_not_before(site):
    recall_rule(site)
    patient = factories.make_patient(site)
    reachable(patient, "recalls", "email")
    due_recall(patient, TODAY + dt.timedelta(days=1))
    run()
    assert recalls().count() == 0
    rerun_daily(NOW + DAY)
    assert recalls().get().planned_at == NOW + DAY


def test_a_rule_with_a_day_offset_announces_the_recall_that_many_days_ahead(site):
    recall_rule(site, [{"days": 7}])
    patient = factories.make_patient(site)
    reachable(patient, "recalls", "email")
    due_recall(patient, TODAY + dt.timedelta(days=7))
    run()
    assert recalls().get().event_at.date() == TODAY + dt.timedelta(days=7)


def test_a_completed_recall_gets_no_message(site):
    recall_rule(site)
    patient = factories.make_patient(site)
    reachable(patient, "recalls", "sms")
    due_recall(patient, completed_at=NOW - DAY)
    run()
    assert recalls().count() == 0


def test_a_recall_closed_after_its_first_day_is_not_announced_late(site):
    recall_rule(site)
    patient = factories.make_patient(site)
    reachable(patient, "recalls", "sms")
    recall = due_recall(patient, TODAY - dt.timedelta(days=1))
    recall.completed_at = NOW
    recall.save()
    rerun_daily()
    assert recalls().count() == 0


def test_a_patient_with_a_visit_booked_is_not_recalled(site):
    recall_rule(site)
    patient = factories.make_patient(site)
    reachable(patient, "recalls", "sms")
    due_recall(patient)
    visit = factories.make_appointment(patient, starts_at=NOW + 10 * DAY)
    [skipped] = [d for d in run() if d.kind == "recall"]
    assert skipped.reasons[-1] == reason(Code.RECALL_BOOKED, start=visit.starts_at)
    assert recalls().count() == 0


def test_a_recall_by_age_goes_on_the_birthday_of_that_age(site):
    rule = recall_rule(site, ages=[11])
    due = factories.make_patient(site, birth_date=dt.date(2015, 11, 25))
    older = factories.make_patient(site, birth_date=dt.date(2014, 11, 25))
    for patient in (due, older):
        reachable(patient, "recalls", "email")
    decisions = run()
    message = recalls().get()
    assert (message.entity_type, message.entity_id) == ("patient", due.id)
    assert message.dedupe_key.startswith(f"r{rule.id}:recall:p{due.id}:age11:")
    [planned] = [d for d in decisions if d.kind == "recall"]
    assert reason(Code.RECALL_DUE_AT_AGE, years=11, due=TODAY) in planned.reasons


def test_a_recall_by_months_since_the_last_visit(site):
    recall_rule(site, months_since_last_visit=12)
    due = factories.make_patient(site, last_visit_on=dt.date(2025, 11, 25))
    recent = factories.make_patient(site, last_visit_on=dt.date(2026, 5, 25))
    for patient in (due, recent):
        reachable(patient, "recalls", "email")
    run()
    assert list(recalls().values_list("entity_id", flat=True)) == [due.id]


def test_a_contact_without_a_recalls_preference_is_not_recalled(site):
    recall_rule(site)
    patient = factories.make_patient(site)
    reachable(patient, "reminders", "sms")
    due_recall(patient)
    [skipped] = [d for d in run() if d.kind == "recall"]
    assert [r.code for r in skipped.reasons][-1] is Code.NO_PREFERENCE
    assert recalls().count() == 0


def test_a_recall_text_on_a_day_with_a_treatment_text_waits_for_the_next_day(site):
    enable(site, Kind.RX_READY)
    recall_rule(site)
    patient = factories.make_patient(site)
    for category in ("rx_ready", "recalls"):
        reachable(patient, category, "sms", mobile="+12025550172")
    ready_fill(patient)
    due_recall(patient)
    run()
    recall = recalls().get()
    assert recall.planned_at == dt.datetime(2026, 11, 26, 8, tzinfo=site.zone)
    assert recall.reasons[-1]["code"] == "cap_daily"
    rerun_daily(NOW + HOUR)
    assert OutboxMessage.objects.count() == 2


def test_a_recall_email_names_its_due_date(site):
    from carebell.dispatch import rendering

    recall_rule(site)
    patient = factories.make_patient(site, first_name="Ada")
    reachable(patient, "recalls", "email")
    due_recall(patient)
    run()
    message = recalls().select_related("site", "patient").get()
    rendering.render_batch([message])
    assert "is due for a visit by Wednesday, November 25." in message.body
