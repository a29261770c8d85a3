"""Staff replies in a conversation (SPEC §7.4): free text or a quick response,
rendered with the conversation's patient, queued through the outbox with its
checks, and audited.

A reply is an outbox message (kind inbox_reply) like any other: a number that opted
out gets none (the row is kept, blocked, with its reason), a restricted word blocks
it, and it keeps the site's delivery window and quiet hours — unless the site lets a
reply to the patient's own text of the last few minutes go at once
(`reply_at_once_minutes`), as an answer in a live exchange. The dispatcher sends it
when it is due; its delivery reports move its status, which the thread shows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from carebell import outbox
from carebell.audit import trail
from carebell.core import content, segments
from carebell.core.channels import OPTED_OUT_CODE
from carebell.core.placeholders import RenderContext, find_problems, render
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import BlockReason, Channel, Kind, OutboxStatus
from carebell.core.windows import zone_for
from carebell.inbox import conversations
from carebell.inbox.models import Conversation, QuickResponse, Reply
from carebell.inbox.thread import people_behind
from carebell.messaging.models import InboundMessage, OutboxMessage
from carebell.people.models import ContactPoint, OptOutEvent
from carebell.planning.policies import PolicyCache

#: A reply longer than this many segments is refused (a slip of the paste).
MAX_SEGMENTS = 10
MAX_CHARACTERS = 1600


class WouldCross(Exception):
    """Another staff member replied since the page was loaded: the sender confirms."""

    def __init__(self, replies: list[Reply]):
        super().__init__("another reply was sent meanwhile")
        self.replies = replies


@dataclass(frozen=True)
class Timing:
    """When a reply written now would go: at once (`waits_until` None), or later."""

    waits_until: dt.datetime | None
    why: Reason | None = None
    at_once_for_reply: bool = False  # the site's reply-at-once window applied


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    message: OutboxMessage
    timing: Timing
    blocked: Reason | None = None


def is_opted_out(site_id: int, address: str) -> bool:
    """True when the number refuses texts from the site: a contact point flagged, or
    for a number no contact owns, its latest opt-out event."""
    points = ContactPoint.objects.filter(value=address, contact__patient__site_id=site_id)
    if points.filter(opted_out_sms=True).exists():
        return True
    if points.exists():
        return False
    latest = (
        OptOutEvent.objects.filter(site_id=site_id, address=address, channel=Channel.SMS)
        .order_by("-recorded_at", "-id")
        .values_list("opted_out", flat=True)
        .first()
    )
    return bool(latest)


def reply_timing(conversation: Conversation, now: dt.datetime) -> Timing:
    """When a reply would go now: within the site's reply-at-once minutes of the
    contact's own last text, at once; else at the first instant the delivery window
    and quiet hours allow, in the recipient's zone when a contact of theirs has one."""
    site = conversation.site
    minutes = site.delivery.reply_at_once_minutes
    if minutes and conversation.last_message_at is not None:
        latest = InboundMessage.objects.filter(conversation=conversation).order_by("-received_at")
        last_text = latest.values_list("received_at", flat=True).first()
        if last_text is not None and now - last_text <= dt.timedelta(minutes=minutes):
            return Timing(None, at_once_for_reply=True)
    policy = PolicyCache().for_site(site)
    zone = _recipient_zone(conversation)
    why = policy.why_not(Channel.SMS, now, zone)
    if why is None:
        return Timing(None)
    return Timing(policy.earliest_allowed(Channel.SMS, now, None, zone), why)


def _recipient_zone(conversation: Conversation):
    zones = ContactPoint.objects.filter(
        value=conversation.address, contact__patient__site_id=conversation.site_id
    ).exclude(contact__time_zone="")
    name = zones.values_list("contact__time_zone", flat=True).first()
    return zone_for(name) if name else None


def render_reply(text: str, conversation: Conversation, patient=None, language: str = "en") -> str:
    """`text` with its placeholders filled for `patient` (None: the number is no
    patient's, so their names fall back) and the site. Unknown or disallowed
    placeholders are a ValidationError: a reply may use what INBOX_REPLY allows."""
    problems = [p for p in find_problems(text, Kind.INBOX_REPLY) if p.is_error]
    if problems:
        raise ValidationError({"body": [p.message for p in problems]}, code="placeholder")
    site = conversation.site
    values = {"SITENAME": site.name, "SITEPHONE": site.phone, "SITEADDRESS": site.address}
    if patient is not None:
        values.update(
            PATIENTNAME=f"{patient.first_name} {patient.last_name}",
            PATIENTFIRSTNAME=patient.first_name,
        )
    context = RenderContext(language=language, time_zone=site.zone, channel=Channel.SMS)
    return render(text, values, context).text


def _checked_body(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"body": "write a reply or choose a quick response"}, code="empty")
    if "\x00" in text or len(text) > MAX_CHARACTERS:
        raise ValidationError(
            {"body": f"a reply holds at most {MAX_CHARACTERS} characters"}, code="too_long"
        )
    return text


def _patient_for(conversation: Conversation, patient_id):
    people = people_behind(conversation.site_id, conversation.address)
    if patient_id in (None, ""):
        return people[0].patient if people else None
    for person in people:
        if str(person.patient.pk) == str(patient_id):
            return person.patient
    raise ValidationError({"patient": "not a patient behind this number"}, code="invalid")


def _quick_response(conversation: Conversation, quick_response_id):
    if quick_response_id in (None, ""):
        return None
    try:
        return QuickResponse.objects.get(site_id=conversation.site_id, pk=int(quick_response_id))
    except (QuickResponse.DoesNotExist, TypeError, ValueError):
        raise ValidationError(
            {"quick_response": "not a quick response of this site"}, code="invalid"
        ) from None


def crossing_replies(conversation: Conversation, seen_reply_id, by) -> list[Reply]:
    """Replies by others sent after the newest one the sender had seen."""
    if seen_reply_id in (None, ""):
        return []
    try:
        seen = int(seen_reply_id)
    except (TypeError, ValueError):
        return []
    newer = Reply.objects.filter(conversation=conversation, pk__gt=seen).exclude(sent_by_id=by.pk)
    return list(newer.select_related("sent_by", "message").order_by("pk"))


def send_reply(
    conversation: Conversation,
    *,
    body: str = "",
    quick_response_id=None,
    patient_id=None,
    seen_reply_id=None,
    confirm_crossing: bool = False,
    by,
    now: dt.datetime | None = None,
) -> Outcome:
    """Send `body` (or, when empty, the quick response) to the conversation's number.

    Bad input (empty, too long, a placeholder a reply may not use, a quick response
    or patient not of this conversation) is a ValidationError and nothing is written.
    When another staff member replied after `seen_reply_id` and the sender has not
    confirmed, WouldCross is raised and nothing is sent. Otherwise the reply is
    queued, or kept blocked with its reason (opted out, restricted word), and the
    outcome says when it will go."""
    site = conversations.require(by, conversation.site)
    now = now or timezone.now()
    if conversation.channel != Channel.SMS:
        raise ValidationError({"body": "replies go by text message only"}, code="unsupported")
    quick = _quick_response(conversation, quick_response_id)
    patient = _patient_for(conversation, patient_id)
    language = patient.language if patient is not None else "en"
    text = _checked_body(body or (quick.body if quick else ""))
    text = render_reply(text, conversation, patient, language)
    if segments.count(text).segments > MAX_SEGMENTS:
        raise ValidationError({"body": f"a reply fits in {MAX_SEGMENTS} segments"}, code="too_long")
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        crossing = crossing_replies(conversation, seen_reply_id, by)
        if crossing and not confirm_crossing:
            raise WouldCross(crossing)
        message = outbox.queue_reply(
            site, conversation.address, Kind.INBOX_REPLY, now=now, language=language,
            body=text, patient_id=patient.pk if patient else None,
        )  # fmt: skip
        blocked = _block_if_refused(site, conversation.address, message, text, now)
        timing = Timing(None) if blocked else reply_timing(conversation, now)
        if timing.waits_until is not None:
            moved = reason(Code.MOVED_LATER_TO_WINDOW, at=timing.waits_until)
            outbox.defer_message(message.id, timing.waits_until, [timing.why, moved], now)
        elif timing.why is not None:  # the settings allow no instant at all
            blocked = timing.why
            never = [timing.why, reason(Code.NO_ALLOWED_TIME)]
            outbox.close_message(message.id, OutboxStatus.CANCELLED, never, now)
        reply = Reply.objects.create(
            conversation=conversation, message=message, sent_by=by, quick_response=quick,
            created_at=now,
        )  # fmt: skip
        conversations.touch(conversation, now)
        conversations.mark_read(conversation, by=by, now=now)
        trail.record(by, "reply", conversation, at=now, detail={
            "message": message.id, "quick_response": quick.pk if quick else None,
            "blocked": blocked.code.value if blocked else "",
            "waits_until": timing.waits_until.isoformat() if timing.waits_until else "",
            "crossed": [r.pk for r in crossing],
        })  # fmt: skip
    message.refresh_from_db()
    return Outcome(reply, message, timing, blocked)


def _block_if_refused(site, address: str, message: OutboxMessage, text: str, now) -> Reason | None:
    """Block the queued reply at once when it must never go; the reason, or None."""
    if is_opted_out(site.pk, address):
        why, block = reason(OPTED_OUT_CODE[Channel.SMS]), BlockReason.OPTED_OUT
    else:
        hit = content.check_outbound([text], tuple(site.delivery.restricted_words))
        if hit is None:
            return None
        why, block = reason(Code.WORD_RESTRICTED, word=hit.word), BlockReason.WORD_RESTRICTED
    outbox.close_message(message.id, OutboxStatus.BLOCKED, [why], now, block_reason=block)
    return why
