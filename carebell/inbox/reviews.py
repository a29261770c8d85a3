"""Possible opt-outs (SPEC §7.2): a text that reads like "please stop" but is not a
keyword waits for a person. Each becomes a review (kept for good) and a staff
notification; a staff member opts the number out — with the text as the opt-out's
evidence — or dismisses it. carebell never decides one by itself: a guess could
silence a patient who only meant "stop the reminders for Tuesday"."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from carebell.audit import trail
from carebell.core.vocab import Channel
from carebell.inbox import conversations
from carebell.inbox.models import Conversation, OptOutReview
from carebell.inbox.notifications import notify_department
from carebell.messaging.models import InboundMessage
from carebell.sites import access
from carebell.sites.models import Site
from carebell.twoway import consent

Decision = OptOutReview.Decision
#: The opt-out event keeps this much of the text as its evidence.
EVIDENCE_LIMIT = 200


def open_review(inbound: InboundMessage, conversation: Conversation, now: dt.datetime):
    """Queue a flagged text for review and tell the site's staff (in the caller's
    transaction). The notification names no patient and quotes nothing: it may go
    by email to a department's address."""
    review, created = OptOutReview.objects.get_or_create(
        inbound=inbound,
        defaults={"site_id": conversation.site_id, "conversation": conversation, "created_at": now},
    )
    if created:
        site = conversation.site
        notify_department(
            site, conversation.assigned_department, kind="possible_opt_out",
            subject=f"{site.name}: a text may ask to stop messages",
            text="A patient's text may be asking to stop messages. Review it in the inbox "
            "(Possible opt-outs) and opt the number out or dismiss it.",
            entity=("conversation", conversation.id), now=now,
        )  # fmt: skip
    return review


def pending_reviews(site: Site, *, by, limit: int = 200) -> list[OptOutReview]:
    """The site's undecided reviews, oldest first (each waits for someone)."""
    conversations.require(by, site)
    rows = OptOutReview.objects.filter(site=site, decision="").select_related(
        "inbound", "conversation"
    )
    return list(rows.order_by("created_at", "pk")[:limit])


def recent_decisions(site: Site, *, by, limit: int = 20) -> list[OptOutReview]:
    conversations.require(by, site)
    rows = OptOutReview.objects.filter(site=site).exclude(decision="")
    rows = rows.select_related("inbound", "conversation", "decided_by")
    return list(rows.order_by("-decided_at", "-pk")[:limit])


def get_review(site: Site, review_id, *, by) -> OptOutReview:
    conversations.require(by, site)
    queryset = OptOutReview.objects.filter(site=site).select_related("inbound", "conversation")
    return access.get_object_or_404_for(by, queryset, "site", pk=review_id)


def decide(review: OptOutReview, decision: str, *, by, now=None) -> OptOutReview:
    """Opt the number out (`opted_out`: SMS at the review's site, source "staff", the
    text as the detail) or dismiss the flag. A review already decided, or an unknown
    decision, is a ValidationError and changes nothing."""
    conversations.require(by, review.site)
    if decision not in Decision.values:
        raise ValidationError({"decision": "opt out or dismiss"}, code="invalid")
    now = now or timezone.now()
    with transaction.atomic():
        locked = OptOutReview.objects.select_for_update().get(pk=review.pk)
        if locked.decision:
            raise ValidationError(
                {"decision": "this text was already reviewed"}, code="already_decided"
            )
        blocked = 0
        if decision == Decision.OPTED_OUT:
            blocked = consent.opt_out_address(
                review.site_id, review.conversation.address, Channel.SMS, source="staff",
                now=now, detail=review.inbound.body[:EVIDENCE_LIMIT],
            )  # fmt: skip
        locked.decision, locked.decided_at, locked.decided_by = decision, now, by
        locked.save(update_fields=["decision", "decided_at", "decided_by"])
        InboundMessage.objects.filter(pk=review.inbound_id).update(needs_review=False)
        conversations.touch(review.conversation, now)
        detail = {"conversation": review.conversation_id, "blocked": blocked}
        trail.record(by, f"review_{decision}", locked, at=now, detail=detail)
    return locked
