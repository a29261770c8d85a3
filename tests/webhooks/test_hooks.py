"""Status callbacks: signed, once, forward only; and the metrics page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from twilio.request_validator import RequestValidator

from carebell.core.vocab import OutboxStatus
from carebell.messaging.models import (
    DeliveryAttempt,
    MessageEvent,
    OutboundEvent,
    OutboxMessage,
    ProviderEvent,
)
from tests.dispatch.test_dispatcher import planned_reminder, send_due

pytestmark = pytest.mark.django_db

TOKEN = "test-auth-token"
SID = "SM" + "a" * 32


@pytest.fixture
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.BASE_URL = "https://carebell.example.org"
    return settings


@pytest.fixture
def sent(site, twilio_settings) -> tuple[OutboxMessage, DeliveryAttempt]:
    """A reminder the dispatcher handed to Twilio (status `sent`)."""
    message = send_due(planned_reminder(site))
    DeliveryAttempt.objects.filter(message=message).update(
        provider="twilio", provider_message_id=SID
    )
    OutboxMessage.objects.filter(id=message.id).update(provider="twilio", provider_message_id=SID)
    return OutboxMessage.objects.get(id=message.id), DeliveryAttempt.objects.get(message=message)


def post_status(client, attempt_id: int, status: str, *, signature: str | None = None):
    path = f"/hooks/twilio/status/{attempt_id}"
    form = {"MessageSid": SID, "MessageStatus": status, "AccountSid": "AC" + "1" * 32}
    if signature is None:
        signature = RequestValidator(TOKEN).compute_signature(
            "https://carebell.example.org" + path, form
        )
    return client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature)


def status_of(message: OutboxMessage) -> str:
    return OutboxMessage.objects.get(id=message.id).status


def test_a_signed_delivered_callback_moves_sent_to_delivered(client, sent):
    message, attempt = sent
    response = post_status(client, attempt.id, "delivered")
    assert response.status_code == 200
    assert status_of(message) == OutboxStatus.DELIVERED
    assert ProviderEvent.objects.get().attempt_id == attempt.id


def test_the_same_callback_replayed_changes_nothing(client, sent):
    message, attempt = sent
    post_status(client, attempt.id, "delivered")
    events = MessageEvent.objects.count()
    updated = OutboxMessage.objects.get(id=message.id).updated_at
    assert post_status(client, attempt.id, "delivered").status_code == 200
    assert MessageEvent.objects.count() == events and ProviderEvent.objects.count() == 1
    assert OutboxMessage.objects.get(id=message.id).updated_at == updated


def test_a_bad_signature_is_refused_and_writes_nothing(client, sent, django_assert_num_queries):
    message, attempt = sent
    with django_assert_num_queries(0):
        response = post_status(client, attempt.id, "delivered", signature="bm90IGl0")
    assert response.status_code == 403
    assert status_of(message) == OutboxStatus.SENT
    assert not ProviderEvent.objects.exists()


def test_a_new_auth_token_applies_to_the_next_callback(client, sent, twilio_settings):
    # The hooks keep the provider they built; a changed setting must not leave the
    # old token trusted.
    message, attempt = sent
    assert post_status(client, attempt.id, "sent").status_code == 200
    twilio_settings.TWILIO_AUTH_TOKEN = "a-new-token"
    assert post_status(client, attempt.id, "delivered").status_code == 403
    assert status_of(message) == OutboxStatus.SENT


def test_an_unknown_attempt_is_answered_200_and_changes_nothing(client, sent):
    message, attempt = sent
    events = MessageEvent.objects.count()
    DeliveryAttempt.objects.filter(id=attempt.id).update(provider_message_id="SMother")
    response = post_status(client, attempt.id + 1000, "delivered")
    assert response.status_code == 200
    assert status_of(message) == OutboxStatus.SENT
    assert MessageEvent.objects.count() == events and not ProviderEvent.objects.exists()


def test_a_late_sent_after_delivered_does_not_move_back(client, sent):
    message, attempt = sent
    post_status(client, attempt.id, "delivered")
    assert post_status(client, attempt.id, "sent").status_code == 200
    assert status_of(message) == OutboxStatus.DELIVERED


#: SAVEPOINT and RELEASE (the test's transaction around the request's, SQLite only),
#: the attempt's read, the report's INSERT, the message's conditional UPDATE and its
#: event, the source system's event; on PostgreSQL all of it is one statement.
CALLBACK_QUERIES = {"postgresql": 1, "sqlite": 7}


def test_a_delivered_callback_takes_a_few_narrow_statements(client, sent):
    message, attempt = sent
    with CaptureQueriesContext(connection) as queries:
        assert post_status(client, attempt.id, "delivered").status_code == 200
    assert len(queries) == CALLBACK_QUERIES[connection.vendor]
    # No whole outbox row is read (nor, so, written back).
    assert not [q for q in queries if q["sql"].startswith("SELECT") and "outbox" in q["sql"]]
    stored = OutboxMessage.objects.get(id=message.id)
    assert (stored.status, stored.lease_expires_at, stored.sent_at) == (
        OutboxStatus.DELIVERED, None, message.sent_at,
    )  # fmt: skip
    assert stored.finished_at is not None and stored.body == message.body
    assert MessageEvent.objects.filter(message=message).latest("id").status == "delivered"
    assert OutboundEvent.objects.get(event_type="message.delivered").payload["message"] == {
        "id": message.id, "kind": message.kind, "channel": "sms",
    }  # fmt: skip


def stored_rows(message):
    return (
        OutboxMessage.objects.filter(id=message.id).values().get(),
        DeliveryAttempt.objects.filter(message=message).values().get(),
        MessageEvent.objects.count(),
        OutboundEvent.objects.count(),
    )


def test_a_replayed_callback_is_told_by_its_insert_and_updates_nothing(client, sent):
    message, attempt = sent
    post_status(client, attempt.id, "delivered")
    before = stored_rows(message)
    with CaptureQueriesContext(connection) as queries:
        assert post_status(client, attempt.id, "delivered").status_code == 200
    assert stored_rows(message) == before and ProviderEvent.objects.count() == 1
    if connection.vendor == "sqlite":  # PostgreSQL: the one statement, moving nothing
        assert not [q for q in queries if q["sql"].startswith(("UPDATE", "WITH"))]


def test_a_callback_that_beats_the_dispatcher_fills_in_the_provider_id_once(client, sent):
    message, attempt = sent
    DeliveryAttempt.objects.filter(id=attempt.id).update(provider_message_id="", finished_at=None)
    OutboxMessage.objects.filter(id=message.id).update(provider_message_id="", status="sending")
    post_status(client, attempt.id, "sent")
    settled = DeliveryAttempt.objects.get(id=attempt.id)
    assert (settled.provider_message_id, settled.status) == (SID, "sent")
    assert settled.finished_at is not None
    assert OutboxMessage.objects.get(id=message.id).provider_message_id == SID
    with CaptureQueriesContext(connection) as queries:
        post_status(client, attempt.id, "delivered")
    # Its id known and the attempt settled: the next report leaves the attempt be.
    after = DeliveryAttempt.objects.get(id=attempt.id)
    assert (after.provider_message_id, after.status, after.finished_at) == (
        SID, "sent", settled.finished_at,
    )  # fmt: skip
    if connection.vendor == "sqlite":
        assert not [q for q in queries if q["sql"].startswith("UPDATE") and "attempt" in q["sql"]]
    assert status_of(message) == OutboxStatus.DELIVERED


def test_metrics_are_prometheus_text_with_the_queue_by_status(client, sent):
    response = client.get("/metrics")
    text = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'carebell_outbox_messages{status="sent"} 1.0' in text
    assert "carebell_send_attempts_total" in text


def signed_post(client, path: str, form: dict):
    signature = RequestValidator(TOKEN).compute_signature(
        "https://carebell.example.org" + path, form
    )
    return client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.mark.parametrize(
    "form",
    [
        {"MessageSid": SID, "MessageStatus": "delivered", "ErrorCode": "\x00"},
        {"MessageSid": SID + "\x00", "MessageStatus": "delivered"},
        {"MessageSid": "SM" + "a" * 99, "MessageStatus": "delivered"},
    ],
)
def test_a_signed_report_no_table_can_hold_is_refused_400_and_writes_nothing(client, sent, form):
    message, attempt = sent
    response = signed_post(client, f"/hooks/twilio/status/{attempt.id}", form)
    assert response.status_code == 400
    assert status_of(message) == OutboxStatus.SENT
    assert not ProviderEvent.objects.exists()


def test_an_inbound_text_from_a_provider_not_configured_here_is_404(client, settings):
    settings.ANYMAIL_ESP = ""
    for provider in ("anymail", "smtp", "console", "twilio_voice", "nope"):
        assert client.post(f"/hooks/{provider}/inbound", {"From": "+1"}).status_code == 404
    assert client.post("/hooks/anymail/status/1", {"a": "b"}).status_code == 404
