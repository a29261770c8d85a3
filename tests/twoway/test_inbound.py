"""Inbound texts: signed, stored once, given only to the organization that sends from
the number they came to, keywords first, confirm and cancel by reply; taken in by one
transaction of a few statements, the text kept whatever fails after it arrived."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from twilio.request_validator import RequestValidator

from carebell.appointments.models import CancellationRequest
from carebell.core.vocab import ContactPointKind, Kind
from carebell.inbox import conversations
from carebell.inbox.models import Conversation, StaffNotification
from carebell.messaging.models import InboundMessage, MessageEvent, OutboundEvent, OutboxMessage
from carebell.people.models import ContactPoint, OptOutEvent
from carebell.providers.twilio.sms import MAX_MEDIA, parse_inbound
from carebell.simulator.providers import sim_token
from carebell.sites.models import Site, SiteSenderNumber
from carebell.twoway import inbound
from tests import factories
from tests.providers.conftest import load_vectors

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


def text(
    client, body: str, *, sid: str | None = None, signature: str | None = None, to="+12025550199"
):
    data = {
        "MessageSid": sid or f"SM{next(_sids):032d}",
        "From": PHONE,
        "To": to,
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


# Texts as Twilio posts them: every field its inbound webhook names.

TOKEN = "twilio-test-token"
ACCOUNT = "AC" + "1" * 32
SERVICE = "MG" + "a" * 32
SERVICE_NUMBER = "+12025550160"
INBOUND_FIELDS = [
    p["name"] for p in load_vectors("inbound_sms_webhook.json")["parameters"]
    if p["name"].isidentifier() and not p["name"].startswith("Media")
]  # fmt: skip


@pytest.fixture
def twilio(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.BASE_URL = "https://carebell.example.org"


def twilio_form(body: str, *, to: str, **fields) -> dict[str, str]:
    sid = f"SM{next(_sids):032d}"
    form = dict.fromkeys(INBOUND_FIELDS, "")
    form.update(
        MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, AccountSid=ACCOUNT, From=PHONE, To=to,
        Body=body, NumMedia="0", NumSegments="1", SmsStatus="received", ApiVersion="2010-04-01",
        ReferralNumMedia="0", ToCountry="US", FromCountry="US",
    )  # fmt: skip
    return {**form, **fields}


def twilio_text(client, body: str, *, to: str, **fields):
    form = twilio_form(body, to=to, **fields)
    url = f"{django_settings.BASE_URL}/hooks/twilio/inbound"
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    return client.post("/hooks/twilio/inbound", form, HTTP_X_TWILIO_SIGNATURE=signature)


def sender_site(org, sms_from: str, *, number=PHONE) -> Site:
    """A site of `org` sending from `sms_from`, where `number` is a parent's mobile."""
    site = factories.make_site(org, sms_from=sms_from)
    contact = factories.make_contact(factories.make_patient(site))
    factories.add_point(contact, ContactPointKind.MOBILE, number, consent_sms=True)
    return site


def pending_text(site, address=PHONE) -> OutboxMessage:
    now = timezone.now()
    return OutboxMessage.objects.create(
        site=site, to_address=address, channel="sms", kind=Kind.GENERAL,
        planned_at=now, due_at=now, created_at=now, updated_at=now,
    )  # fmt: skip


def opted_out_sites():
    points = ContactPoint.objects.filter(value=PHONE, opted_out_sms=True)
    return set(points.values_list("contact__patient__site", flat=True))


def test_a_text_to_a_number_no_site_sends_from_is_kept_unmatched_and_unanswered(
    client, family_site
):
    site, child = family_site
    sent_confirmation(site, [factories.make_appointment(child)])
    assert text(client, "HELP", to="+12025550177").status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.site, inbound.conversation, inbound.needs_review) == (None, None, True)
    assert inbound.raw["To"] == "+12025550177"
    assert replies() == []
    assert not Conversation.objects.exists()


def test_a_stop_to_a_number_no_site_sends_from_opts_out_nowhere(client, family_site):
    site, child = family_site
    sent_confirmation(site, [factories.make_appointment(child)])
    text(client, "STOP", to="+12025550177")
    assert opted_out_sites() == set()
    assert not OptOutEvent.objects.exists()
    assert replies() == []


def test_a_number_two_organizations_send_from_is_given_to_neither(
    client, family_site, other_org_site
):
    site, _child = family_site
    # As an installation may hold it from before senders had one owner each.
    Site.objects.filter(pk=other_org_site.pk).update(sms_from=site.sms_from)
    text(client, "HELP", to=site.sms_from)
    assert InboundMessage.objects.get().site is None
    assert replies() == []


def test_a_text_to_a_number_the_messaging_service_lists_reaches_its_site(
    client, twilio, family_site
):
    site, _child = family_site
    site.sms_from = SERVICE
    site.save()
    SiteSenderNumber.objects.create(site=site, number=SERVICE_NUMBER)
    assert (
        twilio_text(client, "HELP", to=SERVICE_NUMBER, MessagingServiceSid=SERVICE).status_code
        == 200
    )
    assert InboundMessage.objects.get().site == site
    assert replies() == [Kind.KEYWORD_REPLY]


def test_a_text_to_a_number_the_messaging_service_does_not_list_is_kept_unmatched(
    client, twilio, family_site
):
    site, child = family_site
    site.sms_from = SERVICE
    site.save()
    sent_confirmation(site, [factories.make_appointment(child)])
    twilio_text(client, "HELP", to="+12025550161", MessagingServiceSid=SERVICE)
    assert InboundMessage.objects.get().site is None
    assert replies() == []


def test_a_text_to_another_twilio_account_is_kept_unmatched(client, twilio, family_site):
    site, _child = family_site
    twilio_text(client, "STOP", to=site.sms_from, AccountSid="AC" + "2" * 32)
    assert InboundMessage.objects.get().site is None
    assert opted_out_sites() == set()
    assert replies() == []


def test_a_text_to_carebells_own_account_reaches_the_site(client, twilio, family_site):
    site, _child = family_site
    twilio_text(client, "STOP", to=site.sms_from)
    assert InboundMessage.objects.get().site == site
    assert opted_out_sites() == {site.id}


def test_stop_to_a_shared_sender_opts_out_at_every_site_of_it_and_nowhere_else(
    client, twilio, org, other_org_site
):
    downtown, uptown = sender_site(org, SERVICE), sender_site(org, SERVICE)
    SiteSenderNumber.objects.create(site=downtown, number=SERVICE_NUMBER)
    own_number = sender_site(org, "+12025550161")
    elsewhere = other_org_site
    factories.add_point(
        factories.make_contact(factories.make_patient(elsewhere)), ContactPointKind.MOBILE, PHONE
    )
    waiting = {s: pending_text(s) for s in (uptown, own_number, elsewhere)}
    twilio_text(client, "STOP", to=SERVICE_NUMBER, MessagingServiceSid=SERVICE)
    assert opted_out_sites() == {downtown.id, uptown.id}
    assert set(OptOutEvent.objects.values_list("site", flat=True)) == {downtown.id, uptown.id}
    statuses = [OutboxMessage.objects.get(id=waiting[s].id).status for s in waiting]
    assert statuses == [
        "blocked", "scheduled", "scheduled"
    ]  # fmt: skip
    assert replies() == [Kind.KEYWORD_REPLY]


def test_start_to_a_shared_sender_opts_back_in_at_every_site_of_it(client, twilio, org):
    downtown, _uptown = sender_site(org, SERVICE), sender_site(org, SERVICE)
    SiteSenderNumber.objects.create(site=downtown, number=SERVICE_NUMBER)
    twilio_text(client, "STOP", to=SERVICE_NUMBER)
    twilio_text(client, "START", to=SERVICE_NUMBER)
    assert opted_out_sites() == set()


def test_a_text_to_a_shared_sender_goes_to_the_site_that_last_texted_the_number(
    client, twilio, org
):
    downtown, uptown = sender_site(org, SERVICE), sender_site(org, SERVICE)
    SiteSenderNumber.objects.create(site=downtown, number=SERVICE_NUMBER)
    OutboxMessage.objects.filter(id=pending_text(uptown).id).update(status="sent")
    twilio_text(client, "HELP", to=SERVICE_NUMBER)
    assert InboundMessage.objects.get().site == uptown
    assert Conversation.objects.get().site == uptown
    assert OutboxMessage.objects.get(priority=0).site == uptown


def test_sites_with_a_blank_sender_get_the_texts_to_carebells_default_sender(
    client, settings, family_site
):
    settings.TWILIO_FROM = "+12025550150"
    site, _child = family_site
    site.sms_from = ""
    site.save()
    text(client, "HELP", to="+12025550150")
    assert InboundMessage.objects.get().site == site
    assert replies() == [Kind.KEYWORD_REPLY]


def test_the_default_sender_of_two_organizations_is_given_to_neither(
    client, settings, family_site, other_org_site
):
    settings.TWILIO_FROM = "+12025550150"
    site, child = family_site
    sent_confirmation(site, [factories.make_appointment(child)])
    Site.objects.update(sms_from="")
    text(client, "HELP", to="+12025550150")
    assert InboundMessage.objects.get().site is None
    assert replies() == []


def test_a_text_claiming_more_media_than_twilio_sends_reads_at_most_ten():
    form = twilio_form("hello", to="+12025550199", NumMedia="100000")
    form.update({f"MediaUrl{i}": f"https://api.twilio.com/media/ME{i}" for i in range(12)})
    assert len(parse_inbound(form).media) == MAX_MEDIA == 10
    assert parse_inbound({**form, "NumMedia": "-5"}).media == []


def test_a_signed_text_claiming_a_billion_media_is_stored_at_once(client, twilio, family_site):
    site, _child = family_site
    response = twilio_text(client, "hello", to=site.sms_from, NumMedia="1000000000")
    assert response.status_code == 200
    assert InboundMessage.objects.get().site == site


# --- one transaction per text, and no loss ------------------------------------------

#: The sender's sites, the conversation's upsert, the number's contact points, the
#: text's INSERT with the reply on PostgreSQL (after it on SQLite, in two statements),
#: and the test transaction's SAVEPOINT and RELEASE around the request's own.
HELP_QUERIES = {"postgresql": 6, "sqlite": 8}
#: As above, with the event that tells the source system staff must read it (on
#: PostgreSQL in the text's own INSERT).
FREE_TEXT_QUERIES = {"postgresql": 6, "sqlite": 7}


def test_a_help_text_is_answered_in_a_few_statements(client, family_site):
    site, _child = family_site
    with CaptureQueriesContext(connection) as queries:
        assert text(client, "HELP").status_code == 200
    assert len(queries) == HELP_QUERIES[connection.vendor]
    assert replies() == ["keyword_reply"]
    answer = OutboxMessage.objects.get(kind="keyword_reply")
    assert (answer.to_address, answer.status, answer.channel, answer.priority) == (
        PHONE, "queued", "sms", 0
    )  # fmt: skip
    assert site.name in answer.body and answer.planned_at == answer.due_at
    assert MessageEvent.objects.get(message=answer).status == "queued"
    stored = InboundMessage.objects.get()
    assert (stored.intent, stored.needs_review) == ("help", False)
    assert stored.conversation == Conversation.objects.get()


def test_a_replayed_help_is_answered_once(client, family_site):
    assert text(client, "HELP", sid="SM-help").status_code == 200
    assert text(client, "HELP", sid="SM-help").status_code == 200  # the provider's retry
    assert replies() == ["keyword_reply"]
    assert InboundMessage.objects.count() == 1
    assert MessageEvent.objects.filter(message__kind="keyword_reply").count() == 1
    assert Conversation.objects.get().unread_count == 1  # the replay's arrival rolled back


def test_a_free_text_is_stored_once_with_its_conversation_and_intent(client, family_site):
    with CaptureQueriesContext(connection) as queries:
        text(client, "Can we come at 4 instead?")
    assert len(queries) == FREE_TEXT_QUERIES[connection.vendor]
    # Read before it is stored, the text is written once: no UPDATE of it afterwards.
    assert not [q for q in queries if q["sql"].startswith("UPDATE")]
    stored = InboundMessage.objects.get()
    assert (stored.intent, stored.needs_review) == ("free_text", False)
    assert stored.conversation.unread_count == 1


def test_a_free_text_tells_the_source_system_once_with_the_texts_ids(client, family_site):
    text(client, "Can we come at 4 instead?", sid="SM-told")
    text(client, "Can we come at 4 instead?", sid="SM-told")  # the provider's retry
    stored = InboundMessage.objects.get()
    [event] = OutboundEvent.objects.filter(event_type="inbound.needs_staff")
    assert (event.site_id, event.created_at) == (stored.site_id, stored.received_at)
    assert event.payload == {
        "inbound": {"id": stored.id, "intent": "free_text"},
        "conversation": {"id": stored.conversation_id},
    }


def test_a_text_whose_handling_fails_is_kept_for_a_person_and_its_retry_is_a_replay(
    client, family_site, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("the reply could not be queued")

    monkeypatch.setattr(inbound, "_keyword_text", broken)  # the answer of either database
    with pytest.raises(RuntimeError):
        text(client, "HELP", sid="SM-fails")
    kept = InboundMessage.objects.get()
    assert (kept.provider_message_id, kept.body, kept.raw["Body"]) == ("SM-fails", "HELP", "HELP")
    assert kept.needs_review is True
    # Nothing half done: no conversation counted, no reply.
    assert not Conversation.objects.exists()
    assert replies() == []
    monkeypatch.undo()
    assert text(client, "HELP", sid="SM-fails").status_code == 200  # the provider's retry
    assert InboundMessage.objects.count() == 1
    assert replies() == []


def marked_done(conversation: Conversation) -> None:
    Conversation.objects.filter(id=conversation.id).update(done_at=timezone.now())


def test_a_replayed_text_neither_counts_again_nor_reopens_a_done_conversation(client, family_site):
    text(client, "Can we come at 4 instead?", sid="SM-once")
    conversation = Conversation.objects.get()
    marked_done(conversation)
    text(client, "Can we come at 4 instead?", sid="SM-once")
    conversation.refresh_from_db()
    assert (conversation.unread_count, conversation.version) == (1, 1)
    assert conversation.done_at is not None


def test_a_text_reopens_a_done_conversation_and_counts_one_more(client, family_site):
    text(client, "Hello")
    conversation = Conversation.objects.get()
    marked_done(conversation)
    text(client, "Are you there?")
    conversation.refresh_from_db()
    assert conversation.done_at is None and conversation.done_by is None
    assert (conversation.unread_count, conversation.version) == (2, 2)
    assert conversation.last_message_at is not None


def test_the_arrival_returns_the_conversation_as_stored(family_site):
    site, _child = family_site
    now = timezone.now()
    first = conversations.record_arrival(site, PHONE, now)
    waiting = {"intent": "confirm", "appointments": [7, 9]}
    Conversation.objects.filter(id=first.id).update(awaiting_choice=waiting)
    again = conversations.record_arrival(site, PHONE, now)
    assert again.id == first.id
    assert (again.unread_count, again.version) == (2, 2)
    assert conversations.awaited_choices(again) == [7, 9]
    assert again.site is site
    held = {"id", "unread_count", "version", "awaiting_choice", "assigned_department_id",
            "site_id", "channel", "address", "last_message_at", "changed_at", "done_at",
            "done_by_id"}  # fmt: skip
    assert not held & again.get_deferred_fields()  # none of these read again when asked
    assert (again.address, again.channel, again.last_message_at, again.done_at) == (
        PHONE, "sms", now, None
    )  # fmt: skip
    assert again.created_at is not None  # a field the arrival did not read loads when asked


def test_a_sender_given_to_another_organization_routes_the_very_next_text_there(
    client, family_site, other_org_site
):
    site, _child = family_site
    number = site.sms_from
    text(client, "Hello", to=number)
    assert InboundMessage.objects.get().site == site
    # Staff move the number to the other organization's site.
    Site.objects.filter(pk=site.pk).update(sms_from="+12025550188")
    Site.objects.filter(pk=other_org_site.pk).update(sms_from=number)
    text(client, "Hello again", to=number)
    latest = InboundMessage.objects.order_by("-id").first()
    assert latest.site_id == other_org_site.id
    assert Conversation.objects.filter(site=site).count() == 1
    assert OutboxMessage.objects.filter(site=site).count() == 0


@pytest.mark.postgres_only
def test_a_help_and_its_answer_go_by_a_statement_psycopg_parses_once(client, family_site):
    # psycopg keeps a statement's parsing only up to these limits; past them it
    # parses the whole text again on every call (psycopg/_queries.py).
    from psycopg import _queries

    seen = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        assert text(client, "HELP").status_code == 200
    ((sql, params),) = [(s, p) for s, p in seen if "queued_event" in s]
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS
    assert len(sql) <= _queries.MAX_CACHED_STATEMENT_LENGTH, len(sql)
    answer = OutboxMessage.objects.get(kind="keyword_reply")
    assert MessageEvent.objects.get(message=answer).at == answer.created_at
