"""What carebell did and would do about a patient, an appointment or a message, and
why (SPEC §11): the stored outbox rows with their history, and the planner's
decisions for the coming days (the patient's forecast: appointment messages, recalls,
pharmacy messages and greetings) — including the messages it would not send, those the
SMS caps defer or keep back, and the reason. Each decision is set
against what the outbox holds for its occurrence (a scheduled row, one that ended and
will not be planned again, or nothing yet), so a plan is never mistaken for a send."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple

from django.utils import timezone

from carebell.appointments.models import Appointment
from carebell.core.reasons import Code, Reason, render
from carebell.core.vocab import EntityType, OutboxStatus
from carebell.messaging.models import PENDING, AutomatedMessage, OutboxMessage
from carebell.outbox import is_capped
from carebell.people.models import Patient
from carebell.planning.decisions import Decision, masked


def sentences(stored: list[dict]) -> list[str]:
    """Stored reasons (code plus parameters) as the sentences staff read."""
    out = []
    for item in stored:
        params = tuple(sorted((k, v) for k, v in item.items() if k != "code"))
        try:
            out.append(render(Reason(Code(item["code"]), params)))
        except ValueError:  # a code from a newer version: show it as it is
            out.append(item["code"])
    return out


def describe_message(message: OutboxMessage) -> list[str]:
    lines = [
        f"message {message.id}: {message.kind} by {message.channel} to "
        f"{masked(message.to_address)} — {message.status}"
        + (f" ({message.block_reason})" if message.block_reason else ""),
        f"  planned for {message.planned_at:%Y-%m-%d %H:%M} UTC, attempts {message.attempts}",
    ]
    lines += [f"  why: {s}" for s in sentences(message.reasons)]
    for event in message.events.all():
        why = "; ".join(sentences(event.reasons)) or event.note
        lines.append(f"  {event.at:%Y-%m-%d %H:%M} {event.status}" + (f": {why}" if why else ""))
    return lines


def explain_patient(patient: Patient, now: dt.datetime | None = None) -> Iterator[str]:
    """Every stored message about the patient, then what planning decides now."""
    now = now or timezone.now()
    yield f"patient {patient.id} at {patient.site.name}"
    for message in OutboxMessage.objects.filter(patient=patient).order_by("planned_at", "id"):
        yield from describe_message(message)
    yield "planning now:"
    yield from _decisions(patient, now)


def explain_appointment(appointment: Appointment, now: dt.datetime | None = None) -> Iterator[str]:
    now = now or timezone.now()
    yield f"appointment {appointment.id} ({appointment.status}) at {appointment.site.name}"
    about = OutboxMessage.objects.filter(
        entity_type=EntityType.APPOINTMENT, entity_id=appointment.id
    )
    combined = OutboxMessage.objects.filter(
        subjects__entity_type=EntityType.APPOINTMENT, subjects__entity_id=appointment.id
    )
    for message in (about | combined).distinct().order_by("planned_at", "id"):
        yield from describe_message(message)
    yield "planning now:"
    yield from _decisions(appointment.patient, now)


def _decisions(patient: Patient, now: dt.datetime) -> Iterator[str]:
    """The patient's forecast, as the messaging panel shows it: what every planner
    would decide in the coming days, each set against the outbox."""
    # Imported here: the forecast reads the outbox rows through this module.
    from carebell.planning.forecast import FORECAST_DAYS, forecast_patient

    if not AutomatedMessage.objects.filter(site=patient.site, enabled=True).exists():
        yield "  no automated messages are enabled at this site"
        return
    lines = forecast_patient(patient, now)
    held = {line.decision.dedupe_key: line.held for line in lines if line.held}
    for line in lines:
        yield _decision_line(line.decision)
        yield from _outbox_line(line.decision, held)
    if not lines:
        yield f"  nothing to plan in the next {FORECAST_DAYS} days"


class Held(NamedTuple):
    """The outbox row that holds a decision's occurrence key."""

    message_id: int
    status: str
    block_reason: str
    planned_at: dt.datetime

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    @property
    def ended(self) -> bool:
        """Cancelled or blocked: it will not be sent, nor planned again."""
        return self.status in (OutboxStatus.CANCELLED, OutboxStatus.BLOCKED)


def held_rows(decisions: list[Decision]) -> dict[str, Held]:
    """The outbox rows holding the decisions' occurrence keys, by key: what the
    planner's next pass would find there, so would not store again. One query."""
    keys = sorted({d.dedupe_key for d in decisions if d.dedupe_key})
    if not keys:
        return {}
    fields = ("dedupe_key", "id", "status", "block_reason", "planned_at")
    rows = OutboxMessage.objects.filter(dedupe_key__in=keys).values_list(*fields)
    return {key: Held(*rest) for key, *rest in rows}


def _outbox_line(d: Decision, held: dict[str, Held]) -> Iterator[str]:
    """What the outbox holds for a decision: planning alone is a hypothesis (a row
    deleted by staff, say, keeps its occurrence and is never planned again)."""
    if not d.dedupe_key:
        return
    found = held.get(d.dedupe_key)
    if found is None:
        if d.planned:
            yield "    not in the outbox yet: the planner stores it on its next pass"
        return
    message_id, status, block_reason, planned_at = found
    if found.pending:
        at = f"{planned_at:%Y-%m-%d %H:%M} UTC"
        yield f"    in the outbox: message {message_id}, {status} for {at}"
    elif found.ended:
        why = f" ({block_reason})" if block_reason else ""
        yield f"    in the outbox: message {message_id}, {status}{why} — it will not be sent"
    else:
        yield f"    in the outbox: message {message_id}, {status}"


def _decision_line(d: Decision) -> str:
    head = f"  {d.kind} about {d.entity_type} {d.entity_id}"
    if d.planned:
        head += (
            f": would send by {d.channel} to {masked(d.to)} at {d.planned_at:%Y-%m-%d %H:%M} UTC"
        )
    elif is_capped(d):
        head += f": kept as blocked (cap), not sent by {d.channel} to {masked(d.to)}"
    else:
        head += f": not sent to contact {d.contact_id}"
    reasons = "; ".join(r.message for r in d.reasons)
    return head + (f" — {reasons}" if reasons else "")
