"""The inbox's entry points, as every door calls them: per-person unread counts,
filters, assignment, done and reopen, presence, and the access rule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.inbox import conversations
from carebell.inbox.conversations import Filter
from carebell.inbox.models import Conversation
from carebell.sites.models import Department
from tests import factories
from tests.inbox.conftest import PHONE, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(client, family):
    text(client, "Can we come at 4 instead?")
    return Conversation.objects.get()


def listed(site, user, choice=Filter.ALL):
    page = conversations.list_conversations(site, by=user, choice=choice)
    return [c.address for c in page.conversations]


def test_each_person_has_their_own_unread_count(client, site, conversation, desk, colleague):
    assert conversations.unread_conversations(site, desk) == 1
    conversations.read_conversation(conversation, by=desk)
    assert conversations.unread_conversations(site, desk) == 0
    assert conversations.unread_conversations(site, colleague) == 1
    text(client, "Hello?")
    assert conversations.unread_conversations(site, desk) == 1
    page = conversations.list_conversations(site, by=desk)
    assert page.conversations[0].unread == 1


def test_the_filters_pick_unread_mine_department_and_unknown_numbers(
    client, site, conversation, desk, colleague
):
    text(client, "Who is this?", sender="+12025550177")  # no contact owns this number
    assert listed(site, desk, Filter.UNMATCHED) == ["+12025550177"]
    front = Department.objects.create(site=site, name="Front")
    front.members.add(colleague)
    conversations.assign(conversation, user_id=desk.pk, department_id=front.pk, by=colleague)
    assert listed(site, desk, Filter.MINE) == [PHONE]
    assert listed(site, colleague, Filter.MINE) == []
    assert listed(site, colleague, Filter.MY_DEPARTMENT) == [PHONE]
    conversations.read_conversation(conversation, by=desk)
    assert listed(site, desk, Filter.UNREAD) == ["+12025550177"]


def test_done_hides_a_conversation_until_the_contact_writes_again(client, site, conversation, desk):
    conversations.mark_done(conversation, by=desk)
    assert listed(site, desk) == []
    assert listed(site, desk, Filter.DONE) == [PHONE]
    text(client, "One more thing")
    assert listed(site, desk) == [PHONE]
    conversations.mark_done(conversation, by=desk)
    conversations.reopen(conversation, by=desk)
    assert listed(site, desk) == [PHONE]
    audited = AuditEvent.objects.filter(object_type="inbox.conversation")
    assert {"done", "reopen"} <= set(audited.values_list("action", flat=True))


def test_assigning_someone_who_cannot_work_this_inbox_changes_nothing(
    conversation, desk, reader, other_org_site
):
    outsider = factories.make_staff(other_org_site, "Front Desk")
    elsewhere = Department.objects.create(site=other_org_site, name="Front")
    version = conversation.version
    for bad in ({"user_id": reader.pk}, {"user_id": outsider.pk}, {"department_id": elsewhere.pk},
                {"user_id": "abc"}):  # fmt: skip
        with pytest.raises(ValidationError):
            conversations.assign(conversation, by=desk, **bad)
    conversation.refresh_from_db()
    assert conversation.version == version and conversation.assigned_to is None


def test_another_site_or_role_never_reaches_the_conversation(conversation, reader, other_org_site):
    outsider = factories.make_staff(other_org_site, "System Administrator")
    with pytest.raises(Http404):
        conversations.get_conversation(conversation.site, conversation.pk, by=outsider)
    with pytest.raises(Http404):
        conversations.list_conversations(conversation.site, by=outsider)
    with pytest.raises(PermissionDenied):
        conversations.get_conversation(conversation.site, conversation.pk, by=reader)


def test_two_people_in_one_conversation_see_each_other(conversation, desk, colleague):
    assert conversations.heartbeat(conversation, by=desk) == []
    assert conversations.heartbeat(conversation, by=colleague) == ["fran"]
    later = timezone.now() + dt.timedelta(minutes=5)
    assert conversations.present(conversation, later, besides=colleague) == []
    conversations.leave(conversation, by=desk)
    assert conversations.heartbeat(conversation, by=colleague) == []


def test_the_poll_tokens_change_only_when_something_did(client, site, conversation, desk):
    thread = conversations.read_conversation(conversation, by=desk)
    token = conversations.thread_token(conversation, thread.watched)
    listing = conversations.list_token(site)
    assert conversations.thread_token(conversation, thread.watched) == token
    assert conversations.list_token(site) == listing
    text(client, "Still there?")
    assert conversations.thread_token(conversation, thread.watched) != token
    assert conversations.list_token(site) != listing


def test_the_list_poll_check_agrees_with_the_list_token(client, site, conversation, pharmacy):
    token = conversations.list_token(site)
    assert conversations.list_unchanged(site.pk, token)
    for wrong in ("", "stale", "1.2.3", "0", token + "0", "99999999999999999999.000000.1"):
        assert not conversations.list_unchanged(site.pk, wrong), wrong
    # A late commit: a change stamped just before the newest one already seen.
    newest = Conversation.objects.get(pk=conversation.pk).changed_at
    other = Conversation.objects.create(site=site, channel=conversation.channel,
                                        address="+12025550177")  # fmt: skip
    Conversation.objects.filter(pk=other.pk).update(changed_at=newest - dt.timedelta(seconds=1))
    assert not conversations.list_unchanged(site.pk, token)
    token = conversations.list_token(site)
    assert conversations.list_unchanged(site.pk, token)
    text(client, "Still there?")
    assert not conversations.list_unchanged(site.pk, token)
    assert conversations.list_token(pharmacy) == conversations.EMPTY_LIST_TOKEN
    assert conversations.list_unchanged(pharmacy.pk, conversations.EMPTY_LIST_TOKEN)


def test_the_thread_token_follows_the_watched_messages(site, conversation, desk):
    from carebell.inbox import replies
    from carebell.messaging.models import OutboxMessage

    replies.send_reply(conversation, body="On it.", by=desk)
    thread = conversations.read_conversation(conversation, by=desk)
    assert thread.watched
    token = conversations.thread_token(conversation, thread.watched)
    assert conversations.token_at(site.pk, conversation.pk, thread.watched) == token
    assert conversations.token_at(site.pk, conversation.pk, [*thread.watched, 2**64]) == token
    later = timezone.now() + dt.timedelta(seconds=3)
    OutboxMessage.objects.filter(pk=thread.watched[0]).update(updated_at=later)
    assert conversations.token_at(site.pk, conversation.pk, thread.watched) != token
    assert conversations.token_at(site.pk + 1000, conversation.pk, []) is None
    assert conversations.token_at(site.pk, 2**64, []) is None


def test_the_thread_token_ignores_another_sites_messages(site, conversation, desk, pharmacy):
    from carebell.inbox import replies
    from carebell.messaging.models import OutboxMessage

    replies.send_reply(conversation, body="On it.", by=desk)
    thread = conversations.read_conversation(conversation, by=desk)
    elsewhere = OutboxMessage.objects.filter(pk=thread.watched[0])
    elsewhere.update(site=pharmacy)  # as if the client asked to watch another site's row
    token = conversations.token_at(site.pk, conversation.pk, thread.watched)
    elsewhere.update(updated_at=timezone.now() + dt.timedelta(seconds=3))
    assert conversations.token_at(site.pk, conversation.pk, thread.watched) == token


def test_an_unknown_filter_is_refused(site, desk):
    with pytest.raises(ValidationError):
        conversations.list_conversations(site, by=desk, choice="everything")
