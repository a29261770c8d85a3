"""Answers to a confirmation request: one rule for a text, a link and a key press —
an answer is applied once, whichever door it comes through and however often."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from carebell.appointments.models import CancellationRequest
from carebell.core.keywords import Intent
from carebell.core.vocab import ContactPointKind, Kind
from carebell.dispatch.rendering import signed_link
from carebell.inbox.models import Conversation, StaffNotification
from carebell.messaging.models import DeliveryAttempt, OutboundEvent, OutboxMessage
from carebell.simulator.providers import sim_token
from carebell.twoway import answers
from tests import factories

pytestmark = pytest.mark.django_db

PHONE = "+12025550142"
TOKEN = "answers-test-token"
_sids = itertools.count(1)


@pytest.fixture
def family(site, settings):
    settings.BASE_URL = "http://testserver"
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    child = factories.make_patient(site, first_name="Lena")
    parent = factories.make_contact(child)
    factories.add_point(parent, ContactPointKind.MOBILE, PHONE, consent_sms=True)
    return child, parent


def asked(site, appointments, channel: str = "sms") -> OutboxMessage:
    """A confirmation request sent to the family's phone about `appointments`."""
    now = timezone.now()
    ids = [a.id for a in appointments]
    return OutboxMessage.objects.create(
        site=site,
        patient=appointments[0].patient,
        to_address=PHONE,
        channel=channel,
        kind=Kind.APPT_CONFIRMATION,
        entity_type="appointment",
        entity_id=ids[0],
        entity_ids=ids if len(ids) > 1 else [],
        body="Hello. Your child has a visit on Monday.",
        event_at=min(a.starts_at for a in appointments),
        planned_at=now,
        due_at=now,
        status="sent",
        sent_at=now,
        created_at=now,
        updated_at=now,
    )


def text(client, body: str):
    data = {"MessageSid": f"SM{next(_sids):032d}", "From": PHONE, "To": "+12025550199"}
    data["Body"] = body
    url = "http://testserver/hooks/sim/inbound"
    signature = RequestValidator(sim_token()).compute_signature(url, data)
    return client.post("/hooks/sim/inbound", data, HTTP_X_TWILIO_SIGNATURE=signature)


def follow_link(client, request: OutboxMessage, answer: str):
    return client.post(urlsplit(signed_link("confirm", request.id)).path, {"answer": answer})


def press(client, call: OutboxMessage, digits: str):
    attempt, _ = DeliveryAttempt.objects.get_or_create(
        message=call,
        number=1,
        defaults={
            "provider": "twilio_voice",
            "idempotency_key": uuid.uuid4().hex,
            "started_at": timezone.now(),
        },
    )
    path = f"/hooks/twilio/gather/{attempt.id}"
    data = {"CallSid": f"CA{attempt.id}", "Digits": digits}
    signature = RequestValidator(TOKEN).compute_signature(f"http://testserver{path}", data)
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


def test_a_cancel_by_text_then_link_then_key_press_is_one_request(client, site, family):
    child, parent = family
    appointment = factories.make_appointment(child)
    request = asked(site, [appointment])
    text(client, "X")
    assert "already received" in follow_link(client, request, "cancel").content.decode()
    press(client, asked(site, [appointment], channel="call"), "2")
    assert [(r.contact_id, r.via) for r in CancellationRequest.objects.all()] == [
        (parent.id, "sms")
    ]
    assert StaffNotification.objects.filter(kind="cancellation").count() == 1


def test_a_repeated_cancel_by_text_records_nothing_new_and_acknowledges_again(client, site, family):
    child, _ = family
    asked(site, [factories.make_appointment(child)])
    for _ in range(3):
        assert text(client, "X").status_code == 200
    assert CancellationRequest.objects.count() == 1
    assert StaffNotification.objects.count() == 1
    acknowledgements = OutboxMessage.objects.filter(kind=Kind.APPT_CANCEL_ACK)
    assert acknowledgements.count() == 3


def test_a_confirm_by_link_then_text_then_key_press_emits_one_event(client, site, family):
    child, _ = family
    appointment = factories.make_appointment(child)
    follow_link(client, asked(site, [appointment]), "confirm")
    text(client, "C")
    press(client, asked(site, [appointment], channel="call"), "1")
    appointment.refresh_from_db()
    assert appointment.status == "confirmed"
    assert OutboundEvent.objects.filter(event_type="appointment.confirmed").count() == 1


def test_each_contact_s_cancel_request_is_kept(site, family):
    child, parent = family
    other = factories.make_contact(child, first_name="Sam")
    factories.add_point(other, ContactPointKind.MOBILE, "+12025550143")
    appointment = factories.make_appointment(child)
    now = timezone.now()
    for address in (PHONE, "+12025550143", PHONE):
        answers.answer_appointments(
            site, Intent.CANCEL, [appointment.id], via="sms", now=now, address=address
        )
    requests = CancellationRequest.objects.order_by("id").values_list("contact_id", flat=True)
    assert list(requests) == [parent.id, other.id]


def test_a_cancel_after_staff_handled_the_request_is_a_new_request(site, family):
    child, _ = family
    appointment = factories.make_appointment(child)
    cancel = Intent.CANCEL
    now = timezone.now()
    answers.answer_appointments(site, cancel, [appointment.id], via="sms", now=now, address=PHONE)
    CancellationRequest.objects.update(handled_at=now)
    [again] = answers.answer_appointments(
        site, cancel, [appointment.id], via="link", now=now, address=PHONE
    )
    assert not again.repeated and CancellationRequest.objects.count() == 2


def test_a_visit_confirmed_after_a_cancel_request_can_be_cancelled_again(site, family):
    child, _ = family
    appointment = factories.make_appointment(child)
    now = timezone.now()
    for answer in (Intent.CANCEL, Intent.CONFIRM, Intent.CANCEL):
        [done] = answers.answer_appointments(
            site, answer, [appointment.id], via="link", now=now, address=PHONE
        )
        assert not done.repeated
    appointment.refresh_from_db()
    assert appointment.status == "cancel_requested"


def test_a_late_cancel_repeated_is_refused_again_and_notifies_once(site, family):
    child, _ = family
    appointment = factories.make_appointment(
        child, starts_at=timezone.now() + dt.timedelta(minutes=30)
    )
    now = timezone.now()
    replies = [
        answers.answer_appointments(
            site, Intent.CANCEL, [appointment.id], via="sms", now=now, address=PHONE
        )[0]
        for _ in range(3)
    ]
    assert [r.reply_kind for r in replies] == [Kind.APPT_CANCEL_REFUSED] * 3
    assert [r.repeated for r in replies] == [False, True, True]
    assert StaffNotification.objects.count() == 1


# --- "which visit?" ---------------------------------------------------------------


def test_a_visit_asked_about_by_text_and_by_call_is_answered_without_asking_which(
    client, site, family
):
    child, _ = family
    appointment = factories.make_appointment(child)
    asked(site, [appointment])
    asked(site, [appointment], channel="call")
    text(client, "C")
    appointment.refresh_from_db()
    assert appointment.status == "confirmed"
    assert not OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).exists()


def test_the_which_visit_question_offers_each_visit_once(client, site, family):
    child, _ = family
    first, second = factories.make_appointment(child), factories.make_appointment(child)
    asked(site, [first])
    asked(site, [first], channel="call")
    asked(site, [second])
    text(client, "C")
    waiting = Conversation.objects.get(address=PHONE).awaiting_choice
    assert waiting["appointments"] == sorted([first.id, second.id])
    question = OutboxMessage.objects.get(kind=Kind.INBOX_REPLY).body
    assert "1)" in question and "2)" in question and "3)" not in question


def test_distinct_groups_keeps_each_set_of_visits_once_in_order():
    assert answers.distinct_groups([[3], [], [1, 2], [3], [2, 1], [4]]) == [[3], [1, 2], [4]]
