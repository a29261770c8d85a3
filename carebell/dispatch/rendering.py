"""What a message says, rendered at send time from its template and current data.

The planner stores which template to use; the words are written just before the
send, so a moved appointment or a corrected name is never sent stale.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings
from django.core import signing

from carebell.appointments.models import Appointment
from carebell.core import segments
from carebell.core.placeholders import CompiledTemplate, RenderContext, compile_template
from carebell.core.speech import speakable
from carebell.core.vocab import Channel, EntityType, Kind
from carebell.messaging.models import MessageTemplate, OutboxMessage
from carebell.pharmacy.models import Fill, Prescription
from carebell.sql import by_ids, fetch_rows

LINK_SALT = {"confirm": "carebell.confirm", "review": "carebell.review", "unsub": "carebell.unsub"}
#: What a written email (a group or one-off message, rendered when staff sent it)
#: holds where its unsubscribe link goes: the link signs the message's id, which a
#: row written in bulk has only once stored, so it is filled in at send time.
LINK_AT_SEND = "#UNSUBSCRIBELINK#"


def signed_link(purpose: str, message_id: int) -> str:
    """A patient page link (SPEC §7.5): signed, and checked for age when opened."""
    token = signing.dumps({"m": message_id}, salt=LINK_SALT[purpose], compress=True)
    return f"{settings.BASE_URL}/p/{purpose}/{token}"


def sender_for(message: OutboxMessage) -> str:
    site = message.site
    if message.channel == Channel.EMAIL:
        return site.email_from or settings.DEFAULT_FROM_EMAIL
    if message.channel == Channel.CALL:
        return site.caller_id or site.sms_from or settings.TWILIO_FROM
    return site.sms_from or settings.TWILIO_MESSAGING_SERVICE_SID or settings.TWILIO_FROM


def headers_for(message: OutboxMessage) -> dict[str, str]:
    """Email headers: a one-click unsubscribe link for every automated email."""
    if message.channel != Channel.EMAIL:
        return {}
    return {"unsubscribe_url": signed_link("unsub", message.id)}


def render_batch(messages: Iterable[OutboxMessage], entities: dict | None = None) -> None:
    """Fill subject, body, html and segments of each message not already written
    (staff replies and group messages arrive written: a written email gets its
    unsubscribe link, `LINK_AT_SEND`, here). Takes outbox rows or the
    dispatcher's claimed records alike; `entities` (from `load_entities`) when the
    caller already has them."""
    pending = []
    for message in messages:
        if not message.body:
            pending.append(message)
        elif message.channel == Channel.EMAIL:
            _link_written(message)
    if not pending:
        return
    if entities is None:
        entities = load_entities(pending)
    templates = _TemplateFinder()
    contexts: dict[tuple, RenderContext] = {}
    for message in pending:
        template = templates.find(message)
        message.template_label = (
            f"#{template.id} {template.name}"
            if template
            else f"default {message.kind}/{message.channel}/{message.language}"
        )
        _write(message, template, entities, contexts)


def _link_written(message) -> None:
    if LINK_AT_SEND not in message.body and LINK_AT_SEND not in message.html_body:
        return
    link = signed_link("unsub", message.id)
    message.body = message.body.replace(LINK_AT_SEND, link)
    message.html_body = message.html_body.replace(LINK_AT_SEND, html.escape(link))


def _write(message, template: MessageTemplate | None, entities: dict, contexts: dict) -> None:
    channel = Channel(message.channel)
    if template is None:
        template = _default(message.kind, channel, message.language)
    html_source = template.html_body if channel == Channel.EMAIL else ""
    parts = compile_parts(template.subject or "", template.body, html_source)
    values = _values(message, entities, parts.names)
    context = _context(contexts, message, channel)
    message.subject, message.body, html_body = render_parts(parts, values, context)
    if parts.html is not None:
        message.html_body = html_body
    if channel == Channel.CALL:
        # What the voice reads: no links, phone numbers and symbols spoken (SPEC §6).
        message.body = speakable(message.body, message.language)
    if channel == Channel.SMS:
        if message.site.delivery.smart_encoding:
            message.body = segments.smart_encode(message.body)
        message.segments = segments.count(message.body).segments


@lru_cache(maxsize=256)
def _default(kind: str, channel: Channel, language: str):
    from carebell.formats.service import default_template

    return default_template(Kind(kind), channel, language)


class Parts(NamedTuple):
    """A message's subject, text and HTML (None: no HTML part), compiled."""

    subject: CompiledTemplate
    body: CompiledTemplate
    html: CompiledTemplate | None
    names: frozenset[str]  # every placeholder the three use


@lru_cache(maxsize=512)
def compile_parts(subject: str, body: str, html_source: str) -> Parts:
    """The compiled parts of a format, or of what staff wrote (cached)."""
    compiled = [compile_template(subject), compile_template(body)]
    html_part = compile_template(html_source) if html_source else None
    names = frozenset(n for c in [*compiled, html_part] if c is not None for n in c.names)
    return Parts(*compiled, html_part, names)


def render_parts(parts: Parts, values, context: RenderContext) -> tuple[str, str, str]:
    """The subject, text and HTML of one message — every email carebell sends, from
    a format or written by staff, is rendered here. The HTML part is written with
    the values escaped; "" when there is none."""
    subject = parts.subject.render(values, context).text if parts.subject.source else ""
    body = parts.body.render(values, context).text
    html_body = parts.html.render(values, _as_html(context)).text if parts.html is not None else ""
    return subject, body, html_body


@lru_cache(maxsize=256)
def _as_html(context: RenderContext) -> RenderContext:
    return dataclasses.replace(context, html=True)


def _context(contexts: dict, message, channel: Channel) -> RenderContext:
    """One RenderContext per language, site and channel in a batch."""
    key = (message.language, message.site_id, channel)
    context = contexts.get(key)
    if context is None:
        context = contexts[key] = RenderContext(
            language=message.language, time_zone=message.site.zone, channel=channel
        )
    return context


class _TemplateFinder:
    """The template in use per (site, kind, channel, language), one query per key."""

    def __init__(self) -> None:
        self._found: dict[tuple, MessageTemplate | None] = {}

    def find(self, message) -> MessageTemplate | None:
        if message.template_id:
            return message.template
        key = (message.site_id, message.kind, message.channel, message.language)
        if key not in self._found:
            self._found[key] = MessageTemplate.objects.filter(
                site_id=message.site_id,
                kind=message.kind,
                channel=message.channel,
                language=message.language,
                in_use=True,
            ).first()
        return self._found[key]


def _entity_ids(message) -> list[int]:
    return message.entity_ids or ([message.entity_id] if message.entity_id else [])


class _Person(NamedTuple):
    first_name: str


class _Appointment(NamedTuple):
    """What a message says about an appointment, and its status for the send-time
    checks (read as plain values: model instances for a batch cost more CPU than
    rendering it)."""

    id: int
    status: str
    starts_at: dt.datetime
    provider_name: str
    location_name: str
    appointment_type: str
    patient: _Person


def _appointments(ids: set[int]) -> list[_Appointment]:
    fields = ("id", "status", "starts_at", "provider_name", "location_name", "appointment_type")
    rows = fetch_rows(by_ids(Appointment, ids).values_list(*fields, "patient__first_name"))
    return [_Appointment(*row[:-1], _Person(row[-1])) for row in rows]


def load_entities(messages: Iterable) -> dict[tuple[str, int], object]:
    """The appointments, prescriptions and fills `messages` are about, by (type, id):
    one query per type."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for message in messages:
        wanted[message.entity_type].update(_entity_ids(message))
    found: dict[tuple[str, int], object] = {}
    loaders = {
        EntityType.APPOINTMENT: _appointments,
        EntityType.PRESCRIPTION: lambda ids: Prescription.objects.select_related("patient").filter(
            id__in=ids
        ),
        EntityType.FILL: lambda ids: Fill.objects.select_related("prescription__patient").filter(
            id__in=ids
        ),
    }
    for entity_type, ids in wanted.items():
        if entity_type in loaders and ids:
            found.update(((entity_type, o.id), o) for o in loaders[entity_type](ids))
    return found


def _values(message, entities: dict, names: frozenset[str]) -> dict[str, object]:
    """The placeholder values for `message`. Links are signed only when one of
    `names` (the template's placeholders) shows them: signing is the costliest
    value by far."""
    site, patient = message.site, message.patient
    values: dict[str, object] = {
        "SITENAME": site.name,
        "SITEPHONE": site.phone,
        "SITEADDRESS": site.address,
    }
    if patient is not None:
        values["PATIENTNAME"] = f"{patient.first_name} {patient.last_name}"
        values["PATIENTFIRSTNAME"] = patient.first_name
    if message.channel == Channel.EMAIL and "UNSUBSCRIBELINK" in names:
        values["UNSUBSCRIBELINK"] = signed_link("unsub", message.id)
    subjects = [entities.get((message.entity_type, i)) for i in _entity_ids(message)]
    subjects = [s for s in subjects if s is not None]
    if message.entity_type == EntityType.APPOINTMENT and subjects:
        values.update(_appointment_values(message, subjects, names))
    elif message.entity_type in (EntityType.PRESCRIPTION, EntityType.FILL) and subjects:
        values.update(_rx_values(message, subjects))
    if message.kind == Kind.RECALL and message.event_at:
        values["DUEDATE"] = message.event_at  # the planner's due date (site midnight)
    if message.kind == Kind.REVIEW_REQUEST and "REVIEWLINK" in names:
        values["REVIEWLINK"] = signed_link("review", message.id)
    return values


def _appointment_values(message, appointments: list[_Appointment], names: frozenset[str]) -> dict:
    first = min(appointments, key=lambda a: a.starts_at)
    values = {
        "APPTDATE": first.starts_at,
        "APPTTIME": first.starts_at,
        "PROVIDER": first.provider_name,
        "LOCATION": first.location_name,
        "APPTREASON": first.appointment_type,
        "CANCELHOURS": message.site.delivery.cancellation_deadline_hours,
    }
    if "CONFIRMLINK" in names:
        values["CONFIRMLINK"] = signed_link("confirm", message.id)
    if "APPTLIST" in names:
        # Each child with their own time; the template's language, channel and the
        # site's zone write them (see placeholders._visits).
        ordered = sorted(appointments, key=lambda a: (a.starts_at, a.patient.first_name))
        values["APPTLIST"] = tuple((a.patient.first_name, a.starts_at) for a in ordered)
    if len(appointments) > 1:
        values["PATIENTNAME"] = " & ".join(sorted({a.patient.first_name for a in appointments}))
        values["PATIENTFIRSTNAME"] = values["PATIENTNAME"]
    return values


def _rx_values(message: OutboxMessage, subjects: list) -> dict:
    prescriptions = [s.prescription if isinstance(s, Fill) else s for s in subjects]
    first = subjects[0]
    values: dict[str, object] = {
        "RXCOUNT": len(prescriptions),
        "RXNUMBER": ", ".join(p.rx_number for p in prescriptions),
        "DRUGNAME": ", ".join(p.drug_name for p in prescriptions),
        "PRESCRIBER": prescriptions[0].prescriber_name,
    }
    if isinstance(first, Fill) and first.ready_at:
        values["READYDATE"] = first.ready_at
    if message.event_at:
        values["DUEDATE"] = message.event_at
    return values
