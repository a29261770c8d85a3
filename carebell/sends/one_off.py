"""A one-off message to one patient (SPEC §5.6, the pharmacy seed's "Send Email/SMS"
from the patient's screen): a staff member writes it, chooses the contact and the
channel, previews it with its SMS segments, and sends it to the queue.

It is a general message like a group one: the contact's preference for general
messages, the channels the site enables, opt-outs, consent and verification decide
whether it may go; if not, it is stored blocked with the reason (and the page says
so). `token` is the form's idempotency key: the same send posted twice is one message.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from carebell import outbox
from carebell.audit import trail
from carebell.messaging.models import OutboxMessage
from carebell.people.models import Contact
from carebell.sends.messages import (
    ONE_OFF_PRIORITY,
    Planned,
    Recipient,
    Texts,
    Writer,
    check_texts,
    parse_channels,
    raise_for,
    sms_price,
)
from carebell.sites import access

PERMISSION = "group_send"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _prepare(patient, contact_id, channel, texts: Texts, by, token: str):
    site = patient.site
    if not access.can(by, PERMISSION, site):
        raise PermissionDenied("group_send is needed to send messages")
    (chosen,) = parse_channels([channel])
    try:
        contact_id = int(contact_id)
    except (TypeError, ValueError):
        contact_id = None
    if contact_id is None or not Contact.objects.filter(patient=patient, id=contact_id).exists():
        raise ValidationError({"contact": ["Choose one of the patient's contacts."]})
    problems = check_texts(texts, [chosen], site)
    raise_for(problems)
    writer = Writer(site, [chosen], texts, key=f"oneoff:{site.id}:{token}")
    recipient = Recipient(patient.id, patient.first_name, patient.last_name)
    return writer, recipient, contact_id, [p.message for p in problems if not p.is_error]


def preview(patient, *, contact_id, channel, texts: Texts, by, now=None) -> dict:
    """The message as it would be stored: its words rendered for the patient, its
    segments and estimated cost for an SMS, whether it would be blocked and why, and
    the warnings about the words."""
    now = now or timezone.now()
    writer, recipient, contact_id, warnings = _prepare(
        patient, contact_id, channel, texts, by, "preview"
    )
    (planned,) = writer.plan([recipient], now, priority=ONE_OFF_PRIORITY, contact_id=contact_id)
    price = sms_price(patient.site)
    return {
        "planned": planned,
        "warnings": warnings,
        "reasons": [r.message for r in planned.decision.reasons],
        "cost": (price * planned.segments).quantize(Decimal("0.0001")),
    }


def send(patient, *, contact_id, channel, texts: Texts, token: str, by, now=None) -> OutboxMessage:
    """Queue the message (or store it blocked with its reason); audited. Returns the
    outbox row; sending the same `token` again returns the first row."""
    now = now or timezone.now()
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ValidationError({"token": ["This form is out of date; open it again."]})
    writer, recipient, contact_id, _warnings = _prepare(
        patient, contact_id, channel, texts, by, token
    )
    with transaction.atomic():
        (planned,) = writer.plan([recipient], now, priority=ONE_OFF_PRIORITY, contact_id=contact_id)
        _store(planned, now)
        message = OutboxMessage.objects.get(dedupe_key=planned.decision.dedupe_key)
        trail.record(by, "send", message, detail={"one_off": True, "channel": message.channel},
                     at=now)  # fmt: skip
    return message


def _store(planned: Planned, now) -> None:
    writer = outbox.OutboxWriter(now)
    writer.add_written(planned.decision, subject=planned.subject, body=planned.body,
                       html_body=planned.html, segments=planned.segments,
                       block_reason=planned.block_reason)  # fmt: skip
    writer.flush()
