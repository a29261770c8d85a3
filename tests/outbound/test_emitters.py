"""Each cause emits its event once, in its own transaction, with a thin payload:
ids and types, never a name, number or the words of a text."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from carebell import outbox
from carebell.core.keywords import Intent
from carebell.core.vocab import Channel, ContactPointKind, Kind
from carebell.messaging.models import DeliveryAttempt, OutboundEvent, OutboxMessage
from carebell.twoway import answers, consent
from carebell.twoway.inbound import InboundSms, handle_inbound_sms
from tests import factories

pytestmark = pytest.mark.django_db

PHONE = "+12025550142"


@pytest.fixture
def family(site):
    child = factories.make_patient(site, first_name="Lena", last_name="Okafor")
    parent = factories.make_contact(child)
    point = factories.add_point(parent, ContactPointKind.MOBILE, PHONE, consent_sms=True)
    return child, parent, point


def emitted(event_type=None):
    rows = OutboundEvent.objects.order_by("id")
    if event_type:
        rows = rows.filter(event_type=event_type)
    return list(rows.values_list("event_type", "payload"))


def assert_thin(payload):
    text = json.dumps(payload)
    for personal in (PHONE, "Lena", "Okafor"):
        assert personal not in text


def appointment_of(child, days=3):
    return factories.make_appointment(child, starts_at=timezone.now() + dt.timedelta(days=days))


def test_a_confirmation_emits_appointment_confirmed_with_ids(site, family):
    child, *_ = family
    visit = appointment_of(child)
    answers.answer_appointments(site, Intent.CONFIRM, [visit.id], via="sms", now=timezone.now())
    [(kind, payload)] = emitted()
    assert kind == "appointment.confirmed"
    assert payload == {
        "appointment": {"id": visit.id, "source": visit.source, "external_id": visit.external_id},
        "patient": {"id": child.id},
    }
    answers.answer_appointments(site, Intent.CONFIRM, [visit.id], via="sms", now=timezone.now())
    assert len(emitted()) == 1  # a repeated answer emits nothing more


def test_a_cancellation_in_automatic_mode_emits_the_request_and_the_cancellation(site, family):
    child, *_ = family
    site.delivery.cancellation_mode = "automatic"
    site.delivery.save()
    visit = appointment_of(child)
    answers.answer_appointments(site, Intent.CANCEL, [visit.id], via="link", now=timezone.now())
    kinds = [kind for kind, _ in emitted()]
    assert kinds == ["appointment.cancellation_requested", "appointment.cancelled"]
    requested = emitted("appointment.cancellation_requested")[0][1]
    assert (requested["accepted"], requested["via"]) == (True, "link")


def test_a_late_cancellation_is_still_told_to_the_source_system_as_refused(site, family):
    child, *_ = family
    visit = appointment_of(child, days=0)  # starts now-ish: past any deadline
    visit.starts_at = timezone.now() + dt.timedelta(hours=1)
    visit.save()
    answers.answer_appointments(site, Intent.CANCEL, [visit.id], via="sms", now=timezone.now())
    [(kind, payload)] = emitted()
    assert (kind, payload["accepted"]) == ("appointment.cancellation_requested", False)


def test_an_opt_out_and_an_opt_in_name_the_contact_points_not_the_number(site, family):
    child, parent, point = family
    consent.opt_out_address(site.id, PHONE, Channel.SMS, source="keyword", now=timezone.now())
    consent.opt_in_address(site.id, PHONE, Channel.SMS, source="keyword", now=timezone.now())
    (out_kind, out), (in_kind, back) = emitted()
    assert (out_kind, in_kind) == ("contact.opted_out", "contact.opted_in")
    expected = [
        {"id": point.id, "contact": parent.id,
         "patient": {"id": child.id, "external_id": child.external_id}}
    ]  # fmt: skip
    assert out == {"channel": "sms", "source": "keyword", "contact_points": expected}
    assert back["contact_points"] == expected
    assert_thin(out)


def test_a_stop_by_text_emits_one_opt_out_per_site_of_the_sender(site, family):
    handle_inbound_sms(sms("STOP"), timezone.now())
    assert [kind for kind, _ in emitted()] == ["contact.opted_out"]


def sms(body, n=[0]):  # noqa: B006 (a counter for unique provider ids)
    n[0] += 1
    return InboundSms("sim", f"SM{n[0]:032d}", PHONE, "+12025550199", body, {})


@pytest.mark.parametrize("body", ["Can we come at 4 instead?", "please stop texting me"])
def test_a_text_staff_must_read_emits_inbound_needs_staff(site, family, body):
    inbound = handle_inbound_sms(sms(body), timezone.now())
    [(kind, payload)] = emitted()
    assert kind == "inbound.needs_staff"
    assert payload["inbound"] == {"id": inbound.id, "intent": inbound.intent}
    assert payload["conversation"]["id"] == inbound.conversation_id
    assert body not in json.dumps(payload)


def test_a_keyword_needs_no_staff(site, family):
    handle_inbound_sms(sms("HELP"), timezone.now())
    assert emitted() == []


def sent_message(site, child):
    now = timezone.now()
    message = OutboxMessage.objects.create(
        site=site, patient=child, to_address=PHONE, channel="sms", kind=Kind.APPT_REMINDER,
        entity_type="appointment", entity_id=5, body="Hi", planned_at=now, due_at=now,
        status="sent", sent_at=now, created_at=now, updated_at=now,
    )  # fmt: skip
    attempt = DeliveryAttempt.objects.create(
        message=message, number=1, provider="sim", idempotency_key="k" * 32,
        started_at=now, finished_at=now, provider_message_id="SM1", status="sent",
    )  # fmt: skip
    return message, attempt


@pytest.mark.parametrize("status", ["delivered", "undelivered", "failed"])
def test_a_delivery_report_emits_its_message_event_once(site, family, status):
    child, *_ = family
    message, _ = sent_message(site, child)
    error = "" if status == "delivered" else "30003"
    for _ in range(2):  # the provider repeats its callback
        outbox.record_status("sim", "SM1", status, now=timezone.now(), error_code=error)
    [(kind, payload)] = emitted()
    assert kind == f"message.{status}"
    assert payload["message"] == {"id": message.id, "kind": "appt_reminder", "channel": "sms"}
    assert payload["about"] == {"type": "appointment", "id": 5}
    assert payload["patient"] == {"id": child.id}
    assert_thin(payload)


def test_a_sent_report_emits_nothing(site, family):
    child, *_ = family
    sent_message(site, child)
    outbox.record_status("sim", "SM1", "sent", now=timezone.now())
    assert emitted() == []


def test_a_consent_record_reaches_an_endpoint_subscribed_to_it(site, family, settings):
    from carebell.outbound import endpoints
    from carebell.outbound.delivery import fan_out
    from carebell.outbound.models import EventDelivery, EventType
    from carebell.people.consent import record_consent

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    subscribed = endpoints.create_endpoint(
        site, url="http://127.0.0.1:9/", event_types=["contact.consent_granted"], by=None
    )[0]
    _child, _parent, point = family
    record = record_consent(
        point, "sms", "grant", source="paper", wording="You may text me reminders.",
        wording_version="v1", system="front desk tablet",
    )  # fmt: skip
    [(kind, payload)] = emitted("contact.consent_granted")
    assert kind in EventType.values and payload["consent_id"] == record.pk
    assert_thin(payload)
    fan_out(timezone.now())
    assert EventDelivery.objects.get().endpoint == subscribed


def test_every_event_carebell_emits_can_be_subscribed_to():
    """The emitters' event names, read from the code, against the vocabulary."""
    import re
    from pathlib import Path

    from carebell.outbound.models import EventType

    root = Path(__file__).resolve().parents[2] / "carebell"
    named = set()
    for path in root.rglob("*.py"):
        text = path.read_text()
        if "events.emit" in text:
            named |= set(re.findall(r'"((?:appointment|contact|message|inbound)\.[a-z_]+)"', text))
    named |= {f"message.{s}" for s in ("delivered", "undelivered", "failed")}  # f-string
    assert named and named <= set(EventType.values)


def test_a_send_that_fails_for_good_emits_message_failed(site, family):
    child, *_ = family
    message, _ = sent_message(site, child)
    OutboxMessage.objects.filter(pk=message.pk).update(status="sending")
    failed = outbox.Outcome(
        message.id, "failed", "sim", None, False, True, None, "21211", "not a number",
        "[]", "failed", "[]", "",
    )  # fmt: skip
    kept = outbox.Outcome(*failed._replace(status="sent", event_status="sent"))
    outbox.record_outcomes(timezone.now(), [], [failed])
    outbox.record_outcomes(timezone.now(), [], [kept])  # no longer sending: nothing moves
    [(kind, payload)] = emitted()
    assert kind == "message.failed"
    assert (payload["message"]["id"], payload["error_code"]) == (message.id, "21211")
