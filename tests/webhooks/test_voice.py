"""Voice webhooks: the answered call's TwiML and what keys 1 and 2 do."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from carebell.appointments.models import Appointment, CancellationRequest
from carebell.core.vocab import Kind
from carebell.inbox.models import StaffNotification
from carebell.messaging.models import DeliveryAttempt, InboundMessage, OutboundEvent, OutboxMessage
from tests import factories

pytestmark = pytest.mark.django_db
TOKEN = "voice-test-token"


@pytest.fixture
def call(site, settings):
    settings.BASE_URL = "http://testserver"
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    appointment = factories.make_appointment(factories.make_patient(site))
    now = timezone.now()
    message = OutboxMessage.objects.create(
        site=site,
        patient=appointment.patient,
        to_address="+12025550150",
        channel="call",
        kind=Kind.APPT_CONFIRMATION,
        entity_type="appointment",
        entity_id=appointment.id,
        body="Hello, this is Maple Pediatrics. Your child has a visit on Friday.",
        planned_at=now,
        due_at=now,
        status="sent",
        created_at=now,
        updated_at=now,
    )
    attempt = DeliveryAttempt.objects.create(
        message=message,
        number=1,
        provider="twilio_voice",
        idempotency_key=uuid.uuid4().hex,
        started_at=now,
    )
    return appointment, attempt


def post(client, path: str, data: dict, signature: str | None = None):
    signed = signature or RequestValidator(TOKEN).compute_signature(
        f"http://testserver{path}", data
    )
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signed)


def test_a_person_hears_the_script_and_is_asked_for_a_key(client, call):
    _, attempt = call
    response = post(
        client, f"/hooks/twilio/voice/{attempt.id}", {"CallSid": "CA1", "AnsweredBy": "human"}
    )
    twiml = response.content.decode()
    assert response.status_code == 200
    assert "<Gather" in twiml and f"/hooks/twilio/gather/{attempt.id}" in twiml
    assert "visit on Friday" in twiml


def test_a_machine_hears_only_the_opening_sentence(client, call):
    _, attempt = call
    twiml = post(
        client,
        f"/hooks/twilio/voice/{attempt.id}",
        {"CallSid": "CA1", "AnsweredBy": "machine_start"},
    ).content.decode()
    assert "Hello, this is Maple Pediatrics." in twiml
    assert "Friday" not in twiml and "<Hangup" in twiml


def test_key_1_confirms_the_appointment(client, call):
    appointment, attempt = call
    twiml = post(client, f"/hooks/twilio/gather/{attempt.id}", {"CallSid": "CA1", "Digits": "1"})
    appointment.refresh_from_db()
    assert appointment.status == "confirmed"
    assert "confirmed" in twiml.content.decode()


def test_key_2_asks_to_cancel_and_speaks_the_acknowledgement(client, call):
    appointment, attempt = call
    response = post(client, f"/hooks/twilio/gather/{attempt.id}", {"CallSid": "CA1", "Digits": "2"})
    appointment.refresh_from_db()
    assert appointment.status == "cancel_requested"
    assert "<Say" in response.content.decode()


def test_a_forged_key_press_changes_nothing(client, call):
    appointment, attempt = call
    response = post(client, f"/hooks/twilio/gather/{attempt.id}", {"Digits": "2"}, signature="x")
    appointment.refresh_from_db()
    assert response.status_code == 403 and appointment.status == "booked"


def test_a_call_is_rendered_as_speakable_text(site):
    from carebell.dispatch.rendering import render_batch
    from carebell.messaging.models import MessageTemplate

    MessageTemplate.objects.create(
        site=site,
        channel="call",
        kind=Kind.KEYWORD_REPLY,
        language="en",
        name="Help",
        body="#SITENAME#: call 202-555-0100 & see https://example.org/help",
    )
    now = timezone.now()
    draft = OutboxMessage(
        site=site,
        to_address="+12025550150",
        channel="call",
        kind=Kind.KEYWORD_REPLY,
        language="en",
        planned_at=now,
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    render_batch([draft])
    assert "https" not in draft.body and "202-555" not in draft.body
    assert "two zero two" in draft.body and " and " in draft.body


def test_a_replayed_key_press_changes_nothing(client, call):
    appointment, attempt = call
    path = f"/hooks/twilio/gather/{attempt.id}"
    for _ in range(5):
        response = post(client, path, {"CallSid": "CA1", "Digits": "2"})
        assert response.status_code == 200 and "<Say" in response.content.decode()
    assert CancellationRequest.objects.filter(appointment=appointment).count() == 1
    assert StaffNotification.objects.filter(kind="cancellation").count() == 1
    key_presses = InboundMessage.objects.filter(channel="call")
    assert [(k.body, k.intent) for k in key_presses] == [("2", "cancel")]


def test_a_key_press_replayed_after_a_later_answer_does_not_undo_it(client, call):
    appointment, attempt = call
    path = f"/hooks/twilio/gather/{attempt.id}"
    post(client, path, {"CallSid": "CA1", "Digits": "1"})
    Appointment.objects.filter(id=appointment.id).update(status="cancel_requested")
    twiml = post(client, path, {"CallSid": "CA1", "Digits": "1"}).content.decode()
    appointment.refresh_from_db()
    assert appointment.status == "cancel_requested"
    assert "confirmed" in twiml
    assert OutboundEvent.objects.filter(event_type="appointment.confirmed").count() == 1


def test_a_key_that_means_nothing_records_nothing(client, call):
    appointment, attempt = call
    twiml = post(client, f"/hooks/twilio/gather/{attempt.id}", {"CallSid": "CA1", "Digits": "7"})
    assert "that key does nothing" in twiml.content.decode()
    assert not InboundMessage.objects.exists()
    appointment.refresh_from_db()
    assert appointment.status == "booked"


def test_the_voice_hooks_answer_404_for_an_attempt_that_does_not_exist(client, call):
    for kind in ("voice", "gather"):
        for attempt_id in (999_999, 2**63, 10**30):
            path = f"/hooks/twilio/{kind}/{attempt_id}"
            assert post(client, path, {"CallSid": "CA1", "Digits": "1"}).status_code == 404
