"""Conversations and replies (SPEC §7.4) through carebell.inbox: the site's
conversations by filter, newest first, a conversation's thread (read and audited),
and a reply by text. Needs work_inbox."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import AwareDatetime

from carebell.api.common import Id, In, Limit, site_for, user_of
from carebell.api.problems import ApiProblem
from carebell.core.reasons import render
from carebell.inbox import conversations, replies
from carebell.web.staff.cursors import make_cursor, parse_cursor

router = Router(tags=["inbox"])
PERMISSION = conversations.PERMISSION
FilterName = Literal["", "unread", "mine", "department", "opt_out", "unmatched", "done"]


class ConversationOut(Schema):
    id: int
    site_id: int
    channel: str
    address: str
    last_message_at: AwareDatetime | None
    done_at: AwareDatetime | None
    assigned_to_id: int | None
    assigned_department_id: int | None
    unread: int = Field(description="texts the token's user has not seen")
    patient_name: str | None
    last_text: str | None
    has_review: bool = Field(description="a reply that may mean stop waits for review")


class ConversationPage(Schema):
    items: list[ConversationOut]
    next: str | None


class ConversationQuery(Schema):
    filter: FilterName = ""
    limit: Limit = 50
    cursor: str = Field("", max_length=200)


class EntryOut(Schema):
    kind: str
    at: AwareDatetime
    body: str
    message_id: int | None
    status: str
    block_reason: str
    message_kind: str
    channel: str
    by: str
    intent: str
    waits_until: AwareDatetime | None


class ThreadOut(Schema):
    conversation: ConversationOut
    patient_ids: list[int]
    opted_out: bool
    last_reply_id: int = Field(description="send back as seen_reply_id with a reply")
    entries: list[EntryOut]


class ReplyIn(In):
    body: str = Field("", max_length=1600)
    quick_response_id: Id | None = None
    patient_id: Id | None = None
    seen_reply_id: int | None = Field(None, ge=0, le=2**63 - 1)
    confirm_crossing: bool = False


class ReplyOut(Schema):
    reply_id: int
    message_id: int
    status: str
    waits_until: AwareDatetime | None
    blocked: str | None = Field(description="why the reply is kept and not sent")


def _conversation(request, site_id: int, conversation_id: int):
    site = site_for(request, site_id, PERMISSION)
    conversation = conversations.get_conversation(site, conversation_id, by=user_of(request))
    request.api_object_type, request.api_object_id = "inbox.conversation", conversation.pk
    return conversation


def _row(conversation, unread: int | None = None) -> dict:
    return {
        "id": conversation.pk,
        "site_id": conversation.site_id,
        "channel": conversation.channel,
        "address": conversation.address,
        "last_message_at": conversation.last_message_at,
        "done_at": conversation.done_at,
        "assigned_to_id": conversation.assigned_to_id,
        "assigned_department_id": conversation.assigned_department_id,
        "unread": getattr(conversation, "unread", unread or 0) or 0,
        "patient_name": getattr(conversation, "patient_name", None),
        "last_text": getattr(conversation, "last_text", None),
        "has_review": bool(getattr(conversation, "has_review", False)),
    }


@router.get(
    "/sites/{site_id}/conversations", response=ConversationPage, summary="The site's conversations"
)
def list_conversations(request: HttpRequest, site_id: Id, query: Query[ConversationQuery]):
    site = site_for(request, site_id, PERMISSION)
    before = parse_cursor(query.cursor) if query.cursor else None
    if query.cursor and before is None:
        raise ApiProblem(400, "bad-cursor", "This cursor is not one the API gave.")
    page = conversations.list_conversations(
        site, by=user_of(request), choice=query.filter, before=before, limit=query.limit
    )
    after = make_cursor(*page.next_before) if page.next_before else None
    return {"items": [_row(c) for c in page.conversations], "next": after}


@router.get(
    "/sites/{site_id}/conversations/{conversation_id}",
    response=ThreadOut,
    summary="A conversation's thread (marked read by the token's user)",
)
def read_conversation(request: HttpRequest, site_id: Id, conversation_id: Id):
    conversation = _conversation(request, site_id, conversation_id)
    thread = conversations.read_conversation(conversation, by=user_of(request))
    return {
        "conversation": _row(conversation),
        "patient_ids": [p.patient.pk for p in thread.people],
        "opted_out": thread.opted_out,
        "last_reply_id": thread.last_reply_id,
        "entries": thread.entries,
    }


@router.post(
    "/sites/{site_id}/conversations/{conversation_id}/replies",
    response={201: ReplyOut},
    summary="Reply by text (queued, or kept with why; 409 if another reply crossed)",
)
def reply(request: HttpRequest, site_id: Id, conversation_id: Id, body: ReplyIn):
    conversation = _conversation(request, site_id, conversation_id)
    try:
        outcome = replies.send_reply(
            conversation,
            body=body.body,
            quick_response_id=body.quick_response_id,
            patient_id=body.patient_id,
            seen_reply_id=body.seen_reply_id,
            confirm_crossing=body.confirm_crossing,
            by=user_of(request),
        )
    except replies.WouldCross:
        raise ApiProblem(
            409,
            "reply-crossed",
            "Another reply was sent since seen_reply_id; read the thread, or send with "
            "confirm_crossing.",
        ) from None
    return Status(
        201,
        {
            "reply_id": outcome.reply.pk,
            "message_id": outcome.message.pk,
            "status": outcome.message.status,
            "waits_until": outcome.timing.waits_until,
            "blocked": render(outcome.blocked) if outcome.blocked else None,
        },
    )
