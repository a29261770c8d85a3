"""What staff wrote, checked once and rendered for each recipient, and who receives
it: shared by group and one-off messages.

`plan_messages` decides, for each patient, the deliveries of a general message over
the channels staff chose, exactly as the planner decides them (`core.channels`
with the site's settings, the chosen channels narrowing what the site enables for
general messages), and renders the words for each. A patient none of whose contacts
may receive it gets one row anyway, blocked with the reasons, so nobody chosen is
silently left out and the queue shows why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError

from carebell.core import segments
from carebell.core.channels import block_reason_for, choose_channels, plan_recipients
from carebell.core.placeholders import Problem, RenderContext, Severity
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import BlockReason, Category, Channel, EntityType, Kind
from carebell.dispatch import rendering
from carebell.formats.defaults import email_html_for
from carebell.formats.service import validate_template
from carebell.planning.contacts import LoadedContact, load_contacts
from carebell.planning.decisions import Decision, dedupe_key
from carebell.planning.policies import PolicyCache

KIND = Kind.GENERAL
#: The channels staff may write a general message for (SPEC §5.6: email and/or SMS).
CHANNELS = (Channel.EMAIL, Channel.SMS)
#: Lower goes first: a written notice to many waits behind the appointment reminders.
GROUP_PRIORITY = 7
ONE_OFF_PRIORITY = 4
#: Hard limits on what a form or the API may hand over, before anything is checked.
LIMITS = {"email_subject": 300, "email_body": 100_000, "sms_body": 1_600}
#: An email's link is filled in when it is sent (dispatch.rendering.LINK_AT_SEND); a
#: text has none to fill (STOP unsubscribes it), so a text may not ask for one.
_NOT_IN_SMS = "#UNSUBSCRIBELINK#"


@dataclass(frozen=True, slots=True)
class Texts:
    """What staff wrote: an email (subject and plain text; its HTML part is laid out
    from the text as every carebell email's is) and/or an SMS."""

    email_subject: str = ""
    email_body: str = ""
    sms_body: str = ""

    def subject_for(self, channel: Channel) -> str:
        return self.email_subject if channel == Channel.EMAIL else ""

    def body_for(self, channel: Channel) -> str:
        return self.email_body if channel == Channel.EMAIL else self.sms_body


def parse_channels(values: Iterable[str]) -> tuple[Channel, ...]:
    """The chosen channels in carebell's order (email, SMS); a clear error for none
    or for one a written message cannot use."""
    chosen = set()
    for value in values:
        try:
            channel = Channel(value)
        except ValueError:
            channel = None
        if channel not in CHANNELS:
            raise ValidationError({"channels": [f"{value!r} is not email or SMS."]})
        chosen.add(channel)
    if not chosen:
        raise ValidationError({"channels": ["Choose email, SMS or both."]})
    return tuple(c for c in CHANNELS if c in chosen)


def check_texts(texts: Texts, channels: Sequence[Channel], site) -> list[Problem]:
    """Everything wrong with `texts` for these channels, errors first: each text is
    judged as a general message format is (placeholders, length, restricted words,
    an email without subject…), with its field named `email_subject`, `email_body`
    or `sms_body`."""
    problems: list[Problem] = []
    for name, limit in LIMITS.items():
        if len(getattr(texts, name)) > limit:
            problems.append(_error(name, "too_long", f"This text is over {limit:,} characters."))
    if problems:
        return problems
    for channel in channels:
        found = validate_template(
            channel, KIND, texts.subject_for(channel), texts.body_for(channel),
            site_name=site.name, restricted_words=site.delivery.restricted_words,
        )  # fmt: skip
        problems += [_renamed(p, channel) for p in found]
        if channel == Channel.SMS and _NOT_IN_SMS in texts.sms_body:
            message = "A text is unsubscribed by replying STOP; remove #UNSUBSCRIBELINK#."
            problems.append(_error("sms_body", "unsubscribe_link", message))
    return sorted(problems, key=lambda p: not p.is_error)


def _error(field: str, code: str, message: str) -> Problem:
    return Problem(code, message, Severity.ERROR, field)


def _renamed(problem: Problem, channel: Channel) -> Problem:
    field = "subject" if problem.field == "subject" else "body"
    return dataclasses.replace(problem, field=f"{channel}_{field}")


def raise_for(problems: Iterable[Problem]) -> None:
    """A ValidationError keyed by field for the errors among `problems`."""
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        if problem.is_error:
            by_field.setdefault(problem.field, []).append(problem.message)
    if by_field:
        raise ValidationError(by_field)


class Recipient(NamedTuple):
    """A patient a message is for, as the planner reads one."""

    id: int
    first_name: str
    last_name: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Planned(NamedTuple):
    """One message of a send: its decision (recipient, channel, key, reasons), the
    words rendered for it (an email's HTML part too), and the block when it may not
    go."""

    decision: Decision
    patient_name: str
    subject: str
    body: str
    segments: int
    block_reason: str  # "" when it is queued to go
    html: str = ""

    @property
    def blocked(self) -> bool:
        return bool(self.block_reason)

    @property
    def channel(self) -> str:
        return self.decision.channel


class Writer:
    """Plans and renders messages of one site for one set of channels and texts;
    reusable across batches (the policy, compiled texts and contexts are kept)."""

    def __init__(self, site, channels: Sequence[Channel], texts: Texts, *, key: str) -> None:
        self.site, self.channels, self.texts, self.key = site, tuple(channels), texts, key
        self.policy = PolicyCache().for_site(site)
        base = self.policy.settings
        enabled = base.kind_channels.get(KIND, frozenset(Channel))
        # The staff member's choice narrows what the site enables: a ladder ("email
        # or text") then climbs only the chosen channels.
        chosen = frozenset(c for c in self.channels if c in enabled)
        self.settings = dataclasses.replace(
            base, kind_channels={**base.kind_channels, KIND: chosen}
        )
        self.smart = bool(site.delivery.smart_encoding)
        self.site_values = {"SITENAME": site.name, "SITEPHONE": site.phone,
                            "SITEADDRESS": site.address}  # fmt: skip
        self._contexts: dict[tuple[str, Channel], RenderContext] = {}
        self._parts: dict[tuple[str, Channel], rendering.Parts] = {}

    def plan(
        self,
        recipients: Sequence[Recipient],
        now: dt.datetime,
        *,
        priority: int = GROUP_PRIORITY,
        contact_id: int | None = None,
    ) -> list[Planned]:
        """The messages for these patients (one contact's only, with `contact_id`)."""
        contacts = load_contacts([r.id for r in recipients], Category.GENERAL)
        today = self.policy.local_date(now)
        out: list[Planned] = []
        for recipient in recipients:
            theirs = contacts.get(recipient.id, [])
            if contact_id is not None:
                theirs = [c for c in theirs if c.facts.contact_id == contact_id]
            out += self._for_patient(recipient, theirs, today, now, priority)
        return out

    def _for_patient(self, recipient, contacts: list[LoadedContact], today, now, priority):
        by_id = {c.facts.contact_id: c for c in contacts}
        if len(contacts) == 1:  # most patients: nothing to sort or share out
            choices = (choose_channels(contacts[0].facts, KIND, self.settings, today),)
        else:
            choices = plan_recipients([c.facts for c in contacts], KIND, self.settings, today)
        out = []
        for choice in choices:
            contact = by_id[choice.contact_id]
            for delivery in choice.deliveries:
                decision = self._decision(recipient, contact, delivery.channel, delivery.address,
                                          choice.reasons, now, priority)  # fmt: skip
                out.append(self._written(decision, recipient, contact.language, ""))
        if out:
            return out
        return [self._blocked(recipient, contacts, choices, now, priority)]

    def _blocked(self, recipient, contacts, choices, now, priority) -> Planned:
        reasons = tuple(dict.fromkeys(r for c in choices for r in c.reasons))
        if not reasons:
            reasons = (reason(Code.NO_CONTACT_POINT, channel=self.channels[0]),)
        channel = _channel_of(reasons, self.channels)
        first = contacts[0] if contacts else None
        address = _address_of(first, channel) if first else ""
        decision = self._decision(recipient, first, channel, address, reasons, now, priority)
        decision.status = "skipped"
        decision.dedupe_key = dedupe_key(f"{self.key}:p{recipient.id}:blocked")
        block = block_reason_for(reasons) or BlockReason.INELIGIBLE
        language = first.language if first else "en"
        return self._written(decision, recipient, language, str(block))

    def _decision(self, recipient, contact, channel, address, reasons, now, priority):
        contact_id = contact.facts.contact_id if contact else None
        return Decision(
            status="planned", kind=KIND, channel=str(channel), site_id=self.site.id,
            patient_id=recipient.id, contact_id=contact_id,
            contact_point_id=contact.point_ids.get(address) if contact else None,
            to=address, entity_type=EntityType.PATIENT, entity_id=recipient.id,
            event_at=None, planned_at=now, reasons=tuple(reasons),
            language=contact.language if contact else "en", entity_name=recipient.name[:200],
            dedupe_key=dedupe_key(f"{self.key}:p{recipient.id}:{channel}:{address}"),
            priority=priority,
        )  # fmt: skip

    def _written(self, decision: Decision, recipient, language: str, block: str) -> Planned:
        channel = Channel(decision.channel)
        values = {**self.site_values, "PATIENTNAME": recipient.name,
                  "PATIENTFIRSTNAME": recipient.first_name,
                  "UNSUBSCRIBELINK": rendering.LINK_AT_SEND}  # fmt: skip
        context = self._contexts.get((language, channel)) or self._context(language, channel)
        parts = self._parts.get((language, channel)) or self._compiled(language, channel)
        subject, body, html_body = rendering.render_parts(parts, values, context)
        count = 0
        if channel == Channel.SMS:
            body = segments.smart_encode(body) if self.smart else body
            count = segments.count(body).segments
        return Planned(decision, recipient.name, subject, body, count, block, html_body)

    def _compiled(self, language: str, channel: Channel) -> rendering.Parts:
        body = self.texts.body_for(channel)
        # The HTML part, laid out from the text as a default email format's is, is
        # rendered with the same values, escaped (dispatch.rendering.render_parts).
        html_source = email_html_for(body, language) if channel == Channel.EMAIL else ""
        parts = rendering.compile_parts(self.texts.subject_for(channel), body, html_source)
        self._parts[(language, channel)] = parts
        return parts

    def _context(self, language: str, channel: Channel) -> RenderContext:
        key = (language, channel)
        found = self._contexts.get(key)
        if found is None:
            found = self._contexts[key] = RenderContext(
                language=language, time_zone=self.site.zone, channel=channel
            )
        return found


def _channel_of(reasons: tuple[Reason, ...], channels: tuple[Channel, ...]) -> Channel:
    """The chosen channel the first reason names, else the first chosen."""
    for r in reasons:
        named = r.param("channel")
        if named in channels:
            return Channel(named)
    return channels[0]


def _address_of(contact: LoadedContact, channel: Channel) -> str:
    point = contact.facts.email if channel == Channel.EMAIL else contact.facts.mobile
    return point.value if point is not None else ""


def store(planned: Iterable[Planned], writer) -> tuple[int, int]:
    """Hand the messages to the outbox writer (`carebell.outbox.OutboxWriter`);
    returns how many are queued and how many blocked."""
    queued = blocked = 0
    for p in planned:
        writer.add_written(p.decision, subject=p.subject, body=p.body, html_body=p.html,
                           segments=p.segments, block_reason=p.block_reason)  # fmt: skip
        blocked += p.blocked
        queued += not p.blocked
    return queued, blocked


def sms_price(site) -> Decimal:
    """What one SMS segment costs this site (its setting, else the install's)."""
    price = site.delivery.sms_price_per_segment
    return Decimal(price if price is not None else settings.SMS_PRICE_PER_SEGMENT)
