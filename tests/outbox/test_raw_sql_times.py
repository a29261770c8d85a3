"""Times bound in raw SQL: a `now` in any zone finds and stores the same instants the
ORM would (SQLite compares datetimes as text)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from carebell.core.vocab import Kind, OutboxStatus
from carebell.dispatch.dispatcher import Dispatcher
from carebell.messaging.models import OutboxMessage
from carebell.outbox import lease, lock_due
from carebell.sql import utc, utc_params
from tests.dispatch.test_dispatcher import plan, planned_reminder
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")


def in_new_york(at: dt.datetime) -> dt.datetime:
    return at.astimezone(NEW_YORK)


def test_utc_binds_an_aware_time_as_the_orm_binds_it():
    assert utc(in_new_york(NOW)) == connection.ops.adapt_datetimefield_value(NOW)
    assert utc(None) is None
    assert utc_params([1, in_new_york(NOW), "sending"]) == [1, utc(NOW), "sending"]


def test_utc_refuses_a_naive_time():
    with pytest.raises(ValueError, match="aware"):
        utc(dt.datetime(2026, 11, 25, 15))


def test_a_due_message_is_found_with_a_now_in_another_zone(site):
    message = planned_reminder(site)
    now = in_new_york(message.due_at)  # the same instant, written 5 hours earlier
    assert lock_due(now, 10) == [message.id]
    lease([message.id], now + dt.timedelta(minutes=2), now)
    message.refresh_from_db()
    assert message.lease_expires_at == message.due_at == now + dt.timedelta(minutes=2)


def test_a_batch_run_with_a_now_in_another_zone_sends_the_due_message(site):
    message = planned_reminder(site)
    dispatcher = Dispatcher()
    try:
        assert dispatcher.process_batch(now=in_new_york(message.due_at))
    finally:
        dispatcher.close()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT
    assert message.lease_expires_at is None


def test_a_message_planned_with_a_now_in_another_zone_is_not_due_before_its_instant(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 3}])  # due today: planned at `now` itself
    family(site)
    plan(site, now=in_new_york(NOW))
    message = OutboxMessage.objects.get()
    assert message.planned_at == NOW
    assert lock_due(NOW - dt.timedelta(hours=1), 10) == []
    assert lock_due(NOW, 10) == [message.id]
