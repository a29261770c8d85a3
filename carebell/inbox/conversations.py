"""A contact's conversation with a site: one per site, channel and address, with its
unread count and the question it is waiting on (which visit a reply is about)."""

from __future__ import annotations

import datetime as dt

from django.db.models import F

from carebell.core.keywords import Intent
from carebell.core.vocab import Channel
from carebell.inbox.models import Conversation
from carebell.sites.models import Site


def record_arrival(site: Site, address: str, now: dt.datetime) -> Conversation:
    """The conversation a text from `address` belongs to (made on its first text),
    locked for the caller's transaction, with one more unread message."""
    conversation, _ = Conversation.objects.select_for_update().get_or_create(
        site=site, channel=Channel.SMS, address=address
    )
    Conversation.objects.filter(id=conversation.id).update(
        unread_count=F("unread_count") + 1, last_message_at=now
    )
    return conversation


def await_choice(conversation: Conversation, intent: Intent, appointment_ids: list[int]) -> None:
    """Remember that the contact was asked which of these visits `intent` is about:
    their next reply may be a number."""
    conversation.awaiting_choice = {"intent": intent.value, "appointments": appointment_ids}
    conversation.save(update_fields=["awaiting_choice"])


def awaited_choices(conversation: Conversation) -> list[int]:
    """The visits the contact was asked to choose from, in the order listed."""
    return (conversation.awaiting_choice or {}).get("appointments", [])


def take_choice(conversation: Conversation, choice: int) -> tuple[Intent, int]:
    """The intent and the visit the contact chose by number (1 = first listed); the
    question is answered, so the conversation waits on nothing any more."""
    waiting = conversation.awaiting_choice
    conversation.awaiting_choice = {}
    conversation.save(update_fields=["awaiting_choice"])
    return Intent(waiting["intent"]), waiting["appointments"][choice - 1]
