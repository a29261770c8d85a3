"""Inbound texts: signed, stored once, keywords first, confirm and cancel by reply."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from carebell.appointments.models import CancellationRequest
from carebell.core.vocab import ContactPointKind, Kind
from carebell.inbox.models import Conversation, StaffNotification
from carebell.messaging.models import InboundMessage, OutboxMessage
from carebell.people.models import ContactPoint
from carebell.providers.sim import sim_token
from tests import factories

pytestmark = pytest.mark.django_db

PHONE = "+12025550142"
_sids = itertools.count(1)


@pytest.fixture
def family_site(site, settings):
    settings.BASE_URL = "http://testserver"
    child = factories.make_patient(site, first_name="Lena")
    parent = factories.make_contact(child)
    factories.add_point(parent, ContactPointKind.MOBILE, PHONE, consent_sms=True)
    return site, child


def text(client, body: str, *, sid: str | None = None, signature: str | None = None):
    data = {
        "MessageSid": sid or f"SM{next(_sids):032d}",
        "From": PHONE,
        "To": "+12025550199",
        "Body": body,
    }
    url = "http://testserver/hooks/sim/inbound"
    signed = signature or RequestValidator(sim_token()).compute_signature(url, data)
    return client.post("/hooks/sim/inbound", data, HTTP_X_TWILIO_SIGNATURE=signed)


def sent_confirmation(site, appointments):
    now = timezone.now()
    ids = [a.id for a in appointments]
    return OutboxMessage.objects.create(
        site=site,
        patient=appointments[0].patient,
        to_address=PHONE,
        channel="sms",
        kind=Kind.APPT_CONFIRMATION,
        entity_type="appointment",
        entity_id=ids[0],
        entity_ids=ids if len(ids) > 1 else [],
        event_at=appointments[0].starts_at,
        planned_at=now,
        due_at=now,
        status="sent",
        sent_at=now,
        created_at=now,
        updated_at=now,
    )


def replies():
    return list(OutboxMessage.objects.filter(priority=0).values_list("kind", flat=True))


def test_stop_opts_the_number_out_and_answers_once(client, family_site):
    response = text(client, " Stop! ")
    assert response.status_code == 200
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is True
    assert replies() == [Kind.KEYWORD_REPLY]
    assert "START" in OutboxMessage.objects.get(priority=0).body


def test_a_replayed_text_changes_nothing(client, family_site):
    text(client, "HELP", sid="SM-replayed")
    text(client, "HELP", sid="SM-replayed")
    assert InboundMessage.objects.count() == 1
    assert replies() == [Kind.KEYWORD_REPLY]
    assert Conversation.objects.get().unread_count == 1


def test_a_forged_text_is_refused_and_nothing_is_written(client, family_site):
    response = text(client, "STOP", signature="forged")
    assert response.status_code == 403
    assert InboundMessage.objects.count() == 0
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is False


def test_start_opts_back_in(client, family_site):
    text(client, "STOP")
    text(client, "START")
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is False


def test_c_confirms_the_open_request(client, family_site):
    site, child = family_site
    appointment = factories.make_appointment(child)
    sent_confirmation(site, [appointment])
    text(client, "c")
    appointment.refresh_from_db()
    assert appointment.status == "confirmed" and appointment.confirmed_at is not None


def test_x_in_time_cancels_automatically_stops_reminders_and_acknowledges(client, family_site):
    site, child = family_site
    site.delivery.cancellation_mode = "automatic"
    site.delivery.save()
    appointment = factories.make_appointment(child)
    sent_confirmation(site, [appointment])
    now = timezone.now()
    pending = OutboxMessage.objects.create(
        site=site,
        to_address=PHONE,
        channel="sms",
        kind=Kind.APPT_REMINDER,
        entity_type="appointment",
        entity_id=appointment.id,
        planned_at=now,
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    text(client, "X")
    appointment.refresh_from_db()
    pending.refresh_from_db()
    assert appointment.status == "cancelled"
    assert pending.status == "cancelled"
    assert replies() == [Kind.APPT_CANCEL_ACK]
    assert StaffNotification.objects.filter(kind="cancellation").count() == 1
    assert CancellationRequest.objects.get().accepted is True


def test_a_late_cancel_is_refused_and_the_appointment_kept(client, family_site):
    site, child = family_site
    appointment = factories.make_appointment(
        child, starts_at=timezone.now() + dt.timedelta(minutes=30)
    )
    sent_confirmation(site, [appointment])
    text(client, "2")
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    assert replies() == [Kind.APPT_CANCEL_REFUSED]


def test_with_two_open_requests_the_contact_is_asked_to_pick(client, family_site):
    site, child = family_site
    first = factories.make_appointment(child, starts_at=timezone.now() + dt.timedelta(days=2))
    second = factories.make_appointment(child, starts_at=timezone.now() + dt.timedelta(days=4))
    sent_confirmation(site, [first])
    sent_confirmation(site, [second])
    text(client, "Y")
    assert replies() == [Kind.INBOX_REPLY]
    text(client, "2")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("booked", "confirmed")


def test_a_combined_request_applies_to_every_child(client, family_site):
    site, child = family_site
    sibling = factories.make_patient(site, first_name="Max")
    appointments = [factories.make_appointment(p) for p in (child, sibling)]
    sent_confirmation(site, appointments)
    text(client, "CONFIRM")
    assert {a.status for a in (type(appointments[0]).objects.all())} == {"confirmed"}


def test_a_text_that_sounds_like_an_opt_out_is_flagged_for_staff(client, family_site):
    text(client, "please stop texting me")
    inbound = InboundMessage.objects.get()
    assert (inbound.intent, inbound.needs_review) == ("possible_opt_out", True)
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is False
