"""A patient's forecast: what every planner would queue for one patient in the next 30
days — refill and pickup reminders, review requests, birthdays, appointment messages —
and what it would not, with the reason; the planners' own code, so what the daily
batches later store is what the forecast showed."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.core.reasons import Code
from carebell.core.vocab import FillStep, Kind
from carebell.messaging.models import OutboxMessage
from carebell.planning.forecast import forecast_patient
from carebell.planning.runner import plan_once
from tests import factories
from tests.messaging.engine_setup import NOW, enable
from tests.planning.test_planning_daily import TODAY, refill
from tests.planning.test_planning_events import DAY, HOUR, reachable, ready_fill

pytestmark = pytest.mark.django_db


def planned(lines) -> list[tuple]:
    return [(f.decision.kind, f.decision.channel, f.at) for f in lines if f.decision.planned]


def at_eight(day: dt.date, site) -> dt.datetime:
    """The site's daily process start on `day`, when that day's batch runs."""
    return dt.datetime.combine(day, dt.time(8), site.zone)


@pytest.fixture
def customer(pharmacy):
    """A pharmacy patient reachable by email for every pharmacy kind and greetings."""
    for kind in (Kind.REFILL_DUE, Kind.RX_PICKUP_REMINDER, Kind.REVIEW_REQUEST, Kind.BIRTHDAY):
        enable(pharmacy, kind)
    patient = factories.make_patient(pharmacy, first_name="Rosa", birth_date=dt.date(1980, 12, 9))
    contact = reachable(patient, "refill_reminder", "email")
    for category in ("rx_ready", "review", "birthday"):
        factories.set_preference(contact, category, "email")
    return patient


def test_a_prescription_due_within_30_days_shows_its_refill_reminder(customer, pharmacy):
    due = TODAY + dt.timedelta(days=12)  # reminded 3 days before, on 4 December
    refill(customer, due)
    refill(customer, TODAY + dt.timedelta(days=40))  # reminded after the 30 days
    lines = forecast_patient(customer, NOW)
    refills = [line for line in lines if line.decision.kind == "refill_due"]
    assert [(f.decision.channel, f.at) for f in refills] == [
        ("email", at_eight(dt.date(2026, 12, 4), pharmacy))
    ]
    assert refills[0].decision.event_at == dt.datetime.combine(due, dt.time(0), pharmacy.zone)
    assert refills[0].held is None


def test_a_birthday_within_30_days_is_greeted_on_the_day(customer, pharmacy):
    assert planned(forecast_patient(customer, NOW)) == [
        ("birthday", "email", at_eight(dt.date(2026, 12, 9), pharmacy))
    ]
    assert planned(forecast_patient(customer, NOW, days=10)) == []


def test_pickup_reminders_and_a_review_request_follow_the_fills(customer, pharmacy):
    ready_fill(customer, NOW - DAY)  # reminded 3 and 7 days after it was ready
    at = NOW - DAY - HOUR
    ready_fill(customer, at - HOUR, step=FillStep.PICKED_UP, picked_up_at=at)
    found = planned(forecast_patient(customer, NOW))
    assert ("rx_pickup_reminder", "email", at_eight(dt.date(2026, 11, 27), pharmacy)) in found
    assert ("rx_pickup_reminder", "email", at_eight(dt.date(2026, 12, 1), pharmacy)) in found
    # The review request is due now (a day after the pickup), and planned once only.
    assert [f for f in found if f[0] == "review_request"] == [("review_request", "email", NOW)]


def test_a_message_that_would_not_go_says_why(pharmacy):
    enable(pharmacy, Kind.BIRTHDAY)
    patient = factories.make_patient(pharmacy, birth_date=dt.date(1990, 12, 1))
    reachable(patient, "refill_reminder", "email")  # nothing said about birthdays
    [line] = forecast_patient(patient, NOW)
    assert not line.decision.planned and line.decision.kind == "birthday"
    assert [r.code for r in line.decision.reasons] == [Code.NO_PREFERENCE]
    assert line.at == dt.datetime.combine(dt.date(2026, 12, 1), dt.time(0), pharmacy.zone)


def test_the_forecast_is_of_its_patient_only(customer, pharmacy, other_org_site):
    refill(customer, TODAY + dt.timedelta(days=5))
    neighbour = factories.make_patient(pharmacy, birth_date=customer.birth_date)
    reachable(neighbour, "birthday", "email")
    refill(neighbour, TODAY + dt.timedelta(days=5))
    enable(other_org_site, Kind.BIRTHDAY)
    stranger = factories.make_patient(other_org_site, birth_date=customer.birth_date)
    reachable(stranger, "birthday", "email")
    lines = forecast_patient(customer, NOW)
    assert lines and {f.decision.patient_id for f in lines} == {customer.id}
    assert forecast_patient(stranger, NOW)[0].decision.site_id == other_org_site.id


def test_the_forecast_writes_nothing(customer):
    refill(customer, TODAY + dt.timedelta(days=5))
    assert forecast_patient(customer, NOW)
    assert OutboxMessage.objects.count() == 0


def test_what_the_daily_batches_store_is_what_the_forecast_showed(customer, pharmacy):
    refill(customer, TODAY + dt.timedelta(days=12))
    refill(customer, TODAY + dt.timedelta(days=2), days_supply=7)
    ready_fill(customer, NOW - DAY)
    at = NOW - DAY - HOUR
    ready_fill(customer, at - HOUR, step=FillStep.PICKED_UP, picked_up_at=at)
    reachable(customer, "birthday", "sms", mobile="+12025550177")  # a second contact
    expected = sorted(
        (f.decision.dedupe_key, f.at) for f in forecast_patient(customer, NOW) if f.decision.planned
    )
    plan_once(now=NOW)
    for n in range(1, 30):
        plan_once(now=at_eight(TODAY + dt.timedelta(days=n), pharmacy))
    stored = OutboxMessage.objects.filter(status="scheduled")
    assert sorted(stored.values_list("dedupe_key", "planned_at")) == expected
    assert len(expected) >= 6


def test_a_message_already_in_the_queue_is_shown_as_held(customer):
    refill(customer, TODAY + dt.timedelta(days=3))  # reminded today
    plan_once(now=NOW)
    message = OutboxMessage.objects.get(kind="refill_due")
    [line] = [f for f in forecast_patient(customer, NOW) if f.decision.kind == "refill_due"]
    assert line.held.message_id == message.id and line.held.pending


def test_the_forecast_reads_each_kind_once_however_many_days(customer):
    refill(customer, TODAY + dt.timedelta(days=12))
    ready_fill(customer, NOW - DAY)

    def queries(days: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            forecast_patient(customer, NOW, days=days)
        return len(captured)

    assert queries(30) == queries(14)


def test_carebell_explain_prints_the_patients_forecast(customer):
    refill(customer, TODAY + dt.timedelta(days=12))
    out = io.StringIO()
    call_command("explain", patient=customer.id, stdout=out)
    text = out.getvalue()
    assert "refill_due about prescription" in text and "would send by email" in text
    assert "birthday about patient" in text and "2026-12-09 13:00 UTC" in text
    assert "not in the outbox yet" in text
