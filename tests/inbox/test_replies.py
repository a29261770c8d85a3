"""Staff replies: rendered for the conversation's patient, queued through the outbox
with its checks (opt-out, restricted words, the window), confirmed before crossing a
colleague's reply, audited; quick responses checked when saved."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from carebell.audit.models import AuditEvent
from carebell.core.vocab import BlockReason, Kind, OutboxStatus
from carebell.inbox import quick_responses, replies
from carebell.inbox.models import Conversation, QuickResponse, Reply
from carebell.messaging.models import OutboxMessage
from carebell.people.models import ContactPoint
from tests.inbox.conftest import PHONE, text

pytestmark = pytest.mark.django_db

# 15:00 UTC is 10:00 in New York, inside the default 08:00–20:00 window.
EVENING = dt.datetime(2026, 11, 26, 2, 30, tzinfo=dt.UTC)  # 21:30 in New York


@pytest.fixture
def conversation(client, family):
    text(client, "Is the office open Friday?")
    return Conversation.objects.get()


def test_a_reply_is_rendered_for_the_patient_and_queued_at_once(conversation, desk):
    outcome = replies.send_reply(conversation, body="Hi, #PATIENTFIRSTNAME# is booked.", by=desk)
    message = outcome.message
    assert message.kind == Kind.INBOX_REPLY and message.status == OutboxStatus.QUEUED
    assert message.body == "Hi, Lena is booked." and message.to_address == PHONE
    assert outcome.timing.waits_until is None and outcome.blocked is None
    assert Reply.objects.get().sent_by == desk
    audit = AuditEvent.objects.get(action="reply")
    assert audit.detail["message"] == message.id and "Lena" not in str(audit.detail)


def test_a_reply_to_an_opted_out_number_is_blocked_with_its_reason(conversation, desk):
    ContactPoint.objects.filter(value=PHONE).update(opted_out_sms=True)
    outcome = replies.send_reply(conversation, body="Are you there?", by=desk)
    outcome.message.refresh_from_db()
    assert outcome.message.status == OutboxStatus.BLOCKED
    assert outcome.message.block_reason == BlockReason.OPTED_OUT
    assert outcome.blocked.code == "opted_out_sms"


def test_a_restricted_word_blocks_the_reply(conversation, desk):
    outcome = replies.send_reply(conversation, body="We do not sell cannabis.", by=desk)
    assert outcome.message.status == OutboxStatus.BLOCKED
    assert outcome.message.block_reason == BlockReason.WORD_RESTRICTED


def test_outside_the_window_a_reply_waits_unless_the_site_answers_at_once(
    client, site, conversation, desk
):
    with time_machine.travel(EVENING, tick=False):
        waiting = replies.send_reply(conversation, body="We open at 8.", by=desk)
        assert waiting.timing.waits_until is not None
        assert waiting.message.due_at == waiting.timing.waits_until > EVENING
        assert waiting.message.status == OutboxStatus.QUEUED
        site.delivery.reply_at_once_minutes = 15
        site.delivery.save()
        conversation.site.refresh_from_db()
        text(client, "Thanks, and Saturday?")
        conversation.refresh_from_db()
        conversation.site.delivery.refresh_from_db()
        at_once = replies.send_reply(conversation, body="Closed Saturdays.", by=desk)
        assert at_once.timing.waits_until is None and at_once.timing.at_once_for_reply
        assert at_once.message.due_at == EVENING


def test_a_reply_crossing_a_colleagues_is_confirmed_first(conversation, desk, colleague):
    replies.send_reply(conversation, body="Yes, 9 to 5.", by=colleague, seen_reply_id=0)
    with pytest.raises(replies.WouldCross) as crossed:
        replies.send_reply(conversation, body="Yes, open.", by=desk, seen_reply_id=0)
    assert [r.sent_by for r in crossed.value.replies] == [colleague]
    assert OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).count() == 1
    replies.send_reply(conversation, body="Yes, open.", by=desk, seen_reply_id=0,
                       confirm_crossing=True)  # fmt: skip
    assert OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("", "body"),
        ("   ", "body"),
        ("x" * 1601, "body"),
        ("Your code is #CODE#", "body"),
        ("Hi #patientname#", "body"),
    ],
)
def test_a_bad_reply_is_refused_and_nothing_is_written(conversation, desk, body, field):
    with pytest.raises(ValidationError) as refused:
        replies.send_reply(conversation, body=body, by=desk)
    assert field in refused.value.message_dict
    assert not OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).exists()


def test_a_reader_may_not_reply(conversation, reader):
    with pytest.raises(PermissionDenied):
        replies.send_reply(conversation, body="Hello", by=reader)


def test_a_quick_response_is_checked_when_saved_and_rendered_when_sent(
    site, conversation, admin, desk
):
    with pytest.raises(ValidationError) as refused:
        quick_responses.save_quick_response(site, name="Code", body="Use #CODE#", by=admin)
    assert "#CODE#" in str(refused.value)
    with pytest.raises(ValidationError):
        quick_responses.save_quick_response(site, name="", body="Hi", by=admin)
    with pytest.raises(PermissionDenied):  # front desk uses them, admins write them
        quick_responses.save_quick_response(site, name="Hi", body="Hi", by=desk)
    saved, _warnings = quick_responses.save_quick_response(
        site, name="Ready", body="Hi #PATIENTNAME#, see you at #SITENAME#.", by=admin
    )
    with pytest.raises(ValidationError):
        quick_responses.save_quick_response(site, name="Ready", body="Again", by=admin)
    outcome = replies.send_reply(conversation, quick_response_id=saved.pk, by=desk)
    assert outcome.message.body == f"Hi Lena Ortiz, see you at {site.name}."
    assert outcome.reply.quick_response == saved
    assert QuickResponse.objects.count() == 1


def test_a_quick_response_of_another_site_is_not_one_of_this_conversation(
    conversation, desk, other_org_site
):
    foreign = QuickResponse.objects.create(site=other_org_site, name="Hi", body="Hi")
    with pytest.raises(ValidationError):
        replies.send_reply(conversation, quick_response_id=foreign.pk, by=desk)
