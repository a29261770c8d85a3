"""What a message says, rendered at send time from its template and current data.

The planner stores which template to use; the words are written just before the
send, so a moved appointment or a corrected name is never sent stale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.core import signing

from carebell.appointments.models import Appointment
from carebell.core import segments
from carebell.core.placeholders import RenderContext, compile_template
from carebell.core.vocab import Channel, Kind
from carebell.messaging.models import MessageTemplate, OutboxMessage
from carebell.pharmacy.models import Fill, Prescription

LINK_SALT = {"confirm": "carebell.confirm", "review": "carebell.review", "unsub": "carebell.unsub"}


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


def render_batch(messages: Iterable[OutboxMessage]) -> None:
    """Fill subject, body, html and segments of each message not already written
    (staff replies and group messages arrive written)."""
    pending = [m for m in messages if not m.body]
    if not pending:
        return
    entities = _load_entities(pending)
    templates = _TemplateFinder()
    for message in pending:
        template = templates.find(message)
        message.template_label = (
            f"#{template.id} {template.name}"
            if template
            else f"default {message.kind}/{message.channel}/{message.language}"
        )
        _write(message, template, _values(message, entities))


def _write(message: OutboxMessage, template: MessageTemplate | None, values: dict) -> None:
    from carebell.formats.service import default_template

    if template is None:
        template = default_template(Kind(message.kind), Channel(message.channel), message.language)
    context = RenderContext(
        language=message.language, time_zone=message.site.zone, channel=Channel(message.channel)
    )
    message.subject = compile_template(template.subject or "").render(values, context).text
    message.body = compile_template(template.body).render(values, context).text
    if message.channel == Channel.EMAIL and template.html_body:
        html_context = RenderContext(
            language=message.language,
            time_zone=message.site.zone,
            channel=Channel.EMAIL,
            html=True,
        )
        message.html_body = compile_template(template.html_body).render(values, html_context).text
    if message.channel == Channel.SMS:
        if message.site.delivery.smart_encoding:
            message.body = segments.smart_encode(message.body)
        message.segments = segments.count(message.body).segments


class _TemplateFinder:
    """The template in use per (site, kind, channel, language), one query per key."""

    def __init__(self) -> None:
        self._found: dict[tuple, MessageTemplate | None] = {}

    def find(self, message: OutboxMessage) -> MessageTemplate | None:
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


def _entity_ids(message: OutboxMessage) -> list[int]:
    return message.entity_ids or ([message.entity_id] if message.entity_id else [])


def _load_entities(messages: list[OutboxMessage]) -> dict[tuple[str, int], object]:
    wanted: dict[str, set[int]] = defaultdict(set)
    for message in messages:
        wanted[message.entity_type].update(_entity_ids(message))
    found: dict[tuple[str, int], object] = {}
    loaders = {
        "appointment": Appointment.objects.select_related("patient"),
        "prescription": Prescription.objects.select_related("patient"),
        "fill": Fill.objects.select_related("prescription__patient"),
    }
    for entity_type, ids in wanted.items():
        if entity_type in loaders:
            found.update(((entity_type, o.id), o) for o in loaders[entity_type].filter(id__in=ids))
    return found


def _values(message: OutboxMessage, entities: dict) -> dict[str, object]:
    site, patient = message.site, message.patient
    values: dict[str, object] = {
        "SITENAME": site.name,
        "SITEPHONE": site.phone,
        "SITEADDRESS": site.address,
    }
    if patient is not None:
        values["PATIENTNAME"] = f"{patient.first_name} {patient.last_name}"
        values["PATIENTFIRSTNAME"] = patient.first_name
    if message.channel == Channel.EMAIL:
        values["UNSUBSCRIBELINK"] = signed_link("unsub", message.id)
    subjects = [entities.get((message.entity_type, i)) for i in _entity_ids(message)]
    subjects = [s for s in subjects if s is not None]
    if message.entity_type == "appointment" and subjects:
        values.update(_appointment_values(message, subjects))
    elif message.entity_type in ("prescription", "fill") and subjects:
        values.update(_rx_values(message, subjects))
    if message.kind == Kind.REVIEW_REQUEST:
        values["REVIEWLINK"] = signed_link("review", message.id)
    return values


def _appointment_values(message: OutboxMessage, appointments: list[Appointment]) -> dict:
    first = min(appointments, key=lambda a: a.starts_at)
    values = {
        "APPTDATE": first.starts_at,
        "APPTTIME": first.starts_at,
        "PROVIDER": first.provider_name,
        "LOCATION": first.location_name,
        "APPTREASON": first.appointment_type,
        "CONFIRMLINK": signed_link("confirm", message.id),
        "CANCELHOURS": message.site.delivery.cancellation_deadline_hours,
    }
    if len(appointments) > 1:
        zone = message.site.zone
        values["APPTLIST"] = ", ".join(
            f"{a.patient.first_name} {a.starts_at.astimezone(zone):%H:%M}"
            for a in sorted(appointments, key=lambda a: a.starts_at)
        )
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
