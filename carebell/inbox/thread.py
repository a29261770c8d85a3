"""What a conversation holds, in order (SPEC §7.4): the automated messages sent to
its address with their status, the contact's texts and key presses, and the staff
replies with who wrote them — and the patients and contacts behind the number.

A few queries per thread, each by an index (outbox by address and channel, texts
by conversation, key presses by their attempts), read as plain values: a thread of
500 messages is one page load, not 500.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db.models import Q

from carebell.core.reasons import Code, Effect, Reason, render
from carebell.core.vocab import Channel, OutboxStatus
from carebell.inbox.models import Conversation, OptOutReview, Reply
from carebell.messaging.models import DeliveryAttempt, InboundMessage, OutboxMessage
from carebell.people.models import ContactPoint

#: A thread shows at most this many outbox messages (the newest); older ones stay in
#: the queue, by the number.
MAX_OUTBOUND = 1000
#: An open page watches the delivery of at most this many of its pending messages.
MAX_WATCHED = 100


class EntryKind:
    TEXT = "text"  # the contact wrote
    KEY_PRESS = "key_press"  # the contact pressed a key during a call
    AUTOMATED = "automated"  # carebell sent it (a reminder, a keyword reply…)
    REPLY = "reply"  # a staff member wrote it


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    at: dt.datetime
    body: str
    message_id: int | None = None  # the outbox row, for what was sent
    status: str = ""
    block_reason: str = ""
    block_why: str = ""  # a blocked message: the catalogue's sentence of why
    message_kind: str = ""
    channel: str = ""
    by: str = ""  # the staff member, for replies
    intent: str = ""
    waits_until: dt.datetime | None = None  # a pending message's planned time

    @property
    def is_inbound(self) -> bool:
        return self.kind in (EntryKind.TEXT, EntryKind.KEY_PRESS)

    @property
    def is_final(self) -> bool:
        return not self.status or OutboxStatus(self.status).is_final


@dataclass(frozen=True)
class Person:
    """A patient behind the number, with the contacts of theirs who own it."""

    patient: object
    contacts: list = field(default_factory=list)
    opted_out: bool = False


@dataclass(frozen=True)
class Thread:
    conversation: Conversation
    people: list[Person]
    entries: list[Entry]
    last_reply_id: int  # the newest staff reply, for the crossing check
    opted_out: bool  # every contact point of the number refuses texts
    pending_reviews: list = field(default_factory=list)  # possible opt-outs to decide

    @property
    def watched(self) -> list[int]:
        """Outbox rows whose status may still change, the newest MAX_WATCHED of them:
        the page polls for these (the poll reads no more than that many)."""
        pending = [e.message_id for e in self.entries if e.message_id and not e.is_final]
        return pending[-MAX_WATCHED:]


_OUTBOX_FIELDS = ("id", "channel", "kind", "status", "block_reason", "body", "subject",
                  "planned_at", "sent_at", "created_at")  # fmt: skip


def people_behind(site_id: int, address: str) -> list[Person]:
    """The patients whose contacts own `address` at the site, in name order."""
    points = (
        ContactPoint.objects.filter(value=address, contact__patient__site_id=site_id)
        .select_related("contact__patient")
        .order_by(
            "contact__patient__last_name", "contact__patient__first_name", "contact__position"
        )
    )
    by_patient: dict[int, list] = {}
    for point in points:
        by_patient.setdefault(point.contact.patient_id, []).append(point)
    return [
        Person(
            patient=found[0].contact.patient,
            contacts=[p.contact for p in found],
            opted_out=all(p.opted_out_sms for p in found),
        )
        for found in by_patient.values()
    ]


def load(conversation: Conversation) -> Thread:
    people = people_behind(conversation.site_id, conversation.address)
    outbound = _outbound(conversation)
    replies = _replies(conversation)
    why = _why_blocked(row["id"] for row in outbound if row["status"] == OutboxStatus.BLOCKED)
    entries = [_sent(row, replies.get(row["id"]), why.get(row["id"], "")) for row in outbound]
    entries += _texts(conversation)
    entries += _key_presses(outbound)
    entries.sort(key=lambda e: (e.at, e.message_id or 0))
    return Thread(
        conversation=conversation,
        people=people,
        entries=entries,
        last_reply_id=max((r.id for r in replies.values()), default=0),
        opted_out=bool(people) and all(p.opted_out for p in people),
        pending_reviews=list(
            OptOutReview.objects.filter(conversation=conversation, decision="")
            .select_related("inbound")
            .order_by("created_at", "pk")
        ),
    )


def _outbound(conversation: Conversation) -> list[dict]:
    channels = (
        [Channel.SMS, Channel.CALL]
        if conversation.channel == Channel.SMS
        else [conversation.channel]
    )
    rows = OutboxMessage.objects.filter(
        to_address=conversation.address, channel__in=channels, site_id=conversation.site_id
    ).order_by("-id")
    return list(rows.values(*_OUTBOX_FIELDS)[:MAX_OUTBOUND])


class _Reply(NamedTuple):
    id: int
    by: str  # who wrote it, as the thread names them


def _replies(conversation: Conversation) -> dict[int, _Reply]:
    """The staff replies by their outbox row, read as plain values (a busy thread
    holds hundreds: model instances of each reply and its writer cost more than the
    query)."""
    rows = Reply.objects.filter(conversation=conversation).values_list(
        "message_id", "id", "sent_by__username", "sent_by__first_name", "sent_by__last_name"
    )
    return {
        message_id: _Reply(pk, f"{first or ''} {last or ''}".strip() or (username or ""))
        for message_id, pk, username, first, last in rows
    }


def _why_blocked(message_ids) -> dict[int, str]:
    """The sentences of the reasons that stopped each blocked message (a query only
    when the thread holds one): staff read why, not a code."""
    ids = list(message_ids)
    if not ids:
        return {}
    rows = OutboxMessage.objects.filter(id__in=ids).values_list("id", "reasons")
    return {pk: _skip_sentences(stored or []) for pk, stored in rows}


def _skip_sentences(stored: list[dict]) -> str:
    skips = []
    for item in stored:
        params = tuple(sorted((k, v) for k, v in item.items() if k != "code"))
        try:
            found = Reason(Code(item["code"]), params)
        except (KeyError, ValueError):  # a code from a newer version
            continue
        if found.effect == Effect.SKIP:
            skips.append(render(found))
    return " ".join(dict.fromkeys(skips))


def _sent(row: dict, reply: _Reply | None, why: str = "") -> Entry:
    status = row["status"]
    pending = status in (OutboxStatus.SCHEDULED, OutboxStatus.QUEUED)
    created = row["created_at"]
    at = row["sent_at"] or (row["created_at"] if reply or not pending else row["planned_at"])
    return Entry(
        kind=EntryKind.REPLY if reply else EntryKind.AUTOMATED,
        at=at,
        body=row["body"] or row["subject"],
        message_id=row["id"],
        status=status,
        block_reason=row["block_reason"],
        block_why=why,
        message_kind=row["kind"],
        channel=row["channel"],
        by=reply.by if reply else "",
        waits_until=row["planned_at"] if pending and row["planned_at"] > created else None,
    )


def _texts(conversation: Conversation) -> list[Entry]:
    rows = InboundMessage.objects.filter(conversation=conversation).values_list(
        "received_at", "body", "intent", "channel"
    )
    return [
        Entry(kind=EntryKind.TEXT, at=at, body=body, intent=intent, channel=channel)
        for at, body, intent, channel in rows
    ]


def _key_presses(outbound: list[dict]) -> list[Entry]:
    """Key presses are stored by the call attempt they answered ("keypress:<id>")."""
    calls = [row["id"] for row in outbound if row["channel"] == Channel.CALL]
    if not calls:
        return []
    attempts = DeliveryAttempt.objects.filter(message_id__in=calls).values_list("id", "provider")
    wanted = Q()
    for attempt_id, provider in attempts:
        wanted |= Q(provider=provider, provider_message_id=f"keypress:{attempt_id}")
    if not wanted:
        return []
    rows = InboundMessage.objects.filter(wanted).values_list("received_at", "body", "intent")
    return [
        Entry(kind=EntryKind.KEY_PRESS, at=at, body=digits, intent=intent, channel=Channel.CALL)
        for at, digits, intent in rows
    ]
