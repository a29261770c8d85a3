"""Email service events (through django-anymail's tracking signal) update the outbox."""

from __future__ import annotations

import uuid

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.utils import timezone

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import DeliveryAttempt, OutboxMessage, ProviderEvent
from carebell.people.models import ContactPoint
from carebell.webhooks.views import anymail_hook_patterns
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_email(site):
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    point = factories.add_point(contact, ContactPointKind.EMAIL, "pat@example.org")
    now = timezone.now()
    message = OutboxMessage.objects.create(
        site=site,
        patient=patient,
        contact_point=point,
        to_address="pat@example.org",
        channel="email",
        kind="appt_reminder",
        planned_at=now,
        due_at=now,
        status="sent",
        created_at=now,
        updated_at=now,
    )
    attempt = DeliveryAttempt.objects.create(
        message=message,
        number=1,
        provider="anymail",
        idempotency_key=uuid.uuid4().hex,
        started_at=now,
        provider_message_id="msg-1",
    )
    return message, attempt


def send_event(event_type: str, attempt: DeliveryAttempt) -> None:
    event = AnymailTrackingEvent(
        event_type=event_type,
        message_id="msg-1",
        metadata={"attempt_id": str(attempt.id)},
        event_id=f"evt-{event_type}",
    )
    tracking.send(sender=object, event=event, esp_name="Postmark")


def test_a_delivered_event_marks_the_email_delivered(sent_email):
    message, attempt = sent_email
    send_event("delivered", attempt)
    message.refresh_from_db()
    assert message.status == "delivered"


def test_an_unsubscribe_event_opts_the_address_out_of_email(sent_email):
    _message, attempt = sent_email
    send_event("unsubscribed", attempt)
    assert ContactPoint.objects.get(value="pat@example.org").opted_out_email is True


def test_the_tracking_webhook_is_not_mounted_without_a_secret(settings):
    settings.ANYMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": None}
    assert anymail_hook_patterns() == []
    settings.ANYMAIL = {"WEBHOOK_SECRET": "user:pass"}
    assert [p.name for p in anymail_hook_patterns()] == ["anymail-tracking"]


@pytest.mark.parametrize("metadata", ["attempt_id=1", ["attempt_id"], None])
def test_an_event_whose_metadata_is_not_a_mapping_is_recorded_by_its_message_id(
    sent_email, metadata
):
    message, _attempt = sent_email
    event = AnymailTrackingEvent(event_type="delivered", message_id="msg-1", metadata=metadata)
    tracking.send(sender=object, event=event, esp_name="Postmark")
    message.refresh_from_db()
    assert message.status == "delivered"


@pytest.mark.parametrize("attempt_id", ["9" * 30, "²", "-1"])
def test_an_event_naming_an_attempt_no_table_holds_is_recorded_by_its_message_id(
    sent_email, attempt_id
):
    message, _attempt = sent_email
    event = AnymailTrackingEvent(
        event_type="delivered", message_id="msg-1", metadata={"attempt_id": attempt_id}
    )
    tracking.send(sender=object, event=event, esp_name="Postmark")
    message.refresh_from_db()
    assert message.status == "delivered"


def test_an_event_whose_message_id_no_column_holds_records_nothing(sent_email):
    message, attempt = sent_email
    event = AnymailTrackingEvent(
        event_type="delivered", message_id="m" * 101, metadata={"attempt_id": str(attempt.id)}
    )
    tracking.send(sender=object, event=event, esp_name="Postmark")
    message.refresh_from_db()
    assert message.status == "sent"
    assert not ProviderEvent.objects.exists()
