"""outbox.record_status: a provider's report, applied once and forward only, on both
databases (one statement on PostgreSQL, its steps on SQLite)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell import outbox
from carebell.messaging.models import (
    DeliveryAttempt,
    MessageEvent,
    OutboundEvent,
    OutboxMessage,
    ProviderEvent,
)
from carebell.people.models import ContactPoint, OptOutEvent
from tests.dispatch.test_dispatcher import planned_reminder, send_due

pytestmark = pytest.mark.django_db

LATER = dt.timedelta(minutes=5)


@pytest.fixture
def sent(site):
    """A reminder the (console) provider accepted: `sent`, its attempt settled."""
    message = send_due(planned_reminder(site))
    return message, DeliveryAttempt.objects.get(message=message)


def report(message, status, *, attempt_id=None, error_code="", opt_out=False, pmid=None):
    return outbox.record_status(
        "console", message.provider_message_id if pmid is None else pmid, status,
        now=message.due_at + LATER, attempt_id=attempt_id, error_code=error_code,
        opt_out=opt_out,
    )  # fmt: skip


def rows(message):
    """Everything a report may change, to compare before and after."""
    return (
        OutboxMessage.objects.filter(id=message.id).values().get(),
        DeliveryAttempt.objects.filter(message=message).values().get(),
        MessageEvent.objects.filter(message=message).count(),
        OutboundEvent.objects.count(),
    )


def test_a_report_by_the_provider_id_alone_finds_its_attempt(sent):
    message, _attempt = sent
    assert report(message, "delivered")
    assert OutboxMessage.objects.get(id=message.id).status == "delivered"


def test_a_report_whose_url_names_an_unknown_attempt_is_found_by_the_provider_id(sent):
    message, attempt = sent
    assert report(message, "delivered", attempt_id=attempt.id + 999)
    assert ProviderEvent.objects.get().attempt_id == attempt.id


def test_a_report_for_an_attempt_and_id_carebell_never_made_writes_nothing(sent):
    message, attempt = sent
    before = rows(message)
    assert not report(message, "delivered", attempt_id=attempt.id + 999, pmid="SMunknown")
    assert not report(message, "delivered", attempt_id=2**63, pmid="")
    assert rows(message) == before and not ProviderEvent.objects.exists()


def test_a_replayed_report_changes_nothing(sent):
    message, attempt = sent
    assert report(message, "delivered", attempt_id=attempt.id)
    before = rows(message)
    assert not report(message, "delivered", attempt_id=attempt.id)
    assert rows(message) == before and ProviderEvent.objects.count() == 1


def test_a_late_report_is_kept_but_moves_nothing_back(sent):
    message, attempt = sent
    report(message, "delivered", attempt_id=attempt.id)
    before = rows(message)
    assert not report(message, "sent", attempt_id=attempt.id)
    assert rows(message) == before and ProviderEvent.objects.count() == 2


def test_a_failure_report_settles_an_unsettled_attempt_as_failed(sent):
    message, attempt = sent
    DeliveryAttempt.objects.filter(id=attempt.id).update(
        finished_at=None, status="unknown", provider_message_id=""
    )
    OutboxMessage.objects.filter(id=message.id).update(status="sending", provider_message_id="")
    assert report(message, "undelivered", attempt_id=attempt.id, error_code="30003")
    settled = DeliveryAttempt.objects.get(id=attempt.id)
    assert (settled.status, settled.finished_at) == ("failed", message.due_at + LATER)
    assert settled.provider_message_id == message.provider_message_id
    stored = OutboxMessage.objects.get(id=message.id)
    assert (stored.status, stored.error_code, stored.lease_expires_at) == (
        "undelivered", "30003", None,
    )  # fmt: skip
    assert stored.finished_at == message.due_at + LATER
    assert stored.provider_message_id == message.provider_message_id
    event = MessageEvent.objects.filter(message=message).latest("id")
    assert (event.status, event.note, event.reasons) == ("undelivered", "30003", [])
    [emitted] = OutboundEvent.objects.all()
    assert (emitted.site_id, emitted.event_type, emitted.created_at) == (
        message.site_id, "message.undelivered", message.due_at + LATER,
    )  # fmt: skip
    assert emitted.payload == {
        "message": {"id": message.id, "kind": message.kind, "channel": "sms"},
        "about": {"type": message.entity_type, "id": message.entity_id},
        "patient": {"id": message.patient_id},
        "error_code": "30003",
    }
    assert (emitted.delivered_at, emitted.attempts) == (None, 0)


def test_a_report_keeps_the_first_sent_time_and_an_attempt_settled_already(sent):
    message, attempt = sent
    report(message, "delivered", attempt_id=attempt.id)
    stored = OutboxMessage.objects.get(id=message.id)
    assert stored.sent_at == message.sent_at
    assert DeliveryAttempt.objects.get(id=attempt.id).finished_at == attempt.finished_at


def test_a_refusal_report_opts_the_number_out_even_when_the_message_stays(sent):
    message, attempt = sent
    report(message, "delivered", attempt_id=attempt.id)
    assert not report(message, "undelivered", attempt_id=attempt.id, error_code="21610",
                      opt_out=True)  # fmt: skip
    assert ContactPoint.objects.get(value=message.to_address).opted_out_sms
    assert OptOutEvent.objects.get().detail == "21610"
    assert OutboxMessage.objects.get(id=message.id).status == "delivered"


def test_a_replayed_refusal_opts_out_once(sent):
    message, attempt = sent
    assert report(message, "failed", attempt_id=attempt.id, error_code="21610", opt_out=True)
    assert not report(message, "failed", attempt_id=attempt.id, error_code="21610", opt_out=True)
    assert OptOutEvent.objects.count() == 1


def test_a_report_is_one_statement_on_postgresql_and_a_few_on_sqlite(sent):
    message, attempt = sent
    with CaptureQueriesContext(connection) as queries:
        assert report(message, "delivered", attempt_id=attempt.id)
    # SQLite: the attempt, the report, the message's move, its event, the source
    # system's event (the attempt is settled already), inside a savepoint.
    assert len(queries) == (1 if connection.vendor == "postgresql" else 7)
