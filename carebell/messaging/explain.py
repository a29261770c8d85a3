"""What carebell did and would do about a patient, an appointment or a message, and
why (SPEC §11): the stored outbox rows with their history, and the planner's current
decisions (appointment messages and recalls) — including the messages it would not
send, those the SMS caps defer or keep back, and the reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import chain

from django.utils import timezone

from carebell.appointments.models import Appointment
from carebell.core.reasons import Code, Reason, render
from carebell.messaging.models import AutomatedMessage, OutboxMessage
from carebell.messaging.planning import daily
from carebell.messaging.planning.appointments import plan_site_appointments
from carebell.messaging.planning.decisions import Decision, masked
from carebell.messaging.planning.sms_caps import SmsCaps
from carebell.messaging.planning.writer import is_capped
from carebell.messaging.policies import PolicyCache
from carebell.people.models import Patient


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
    about = OutboxMessage.objects.filter(entity_type="appointment", entity_id=appointment.id)
    combined = OutboxMessage.objects.filter(
        subjects__entity_type="appointment", subjects__entity_id=appointment.id
    )
    for message in (about | combined).distinct().order_by("planned_at", "id"):
        yield from describe_message(message)
    yield "planning now:"
    yield from _decisions(appointment.patient, now)


def _decisions(patient: Patient, now: dt.datetime) -> Iterator[str]:
    site = patient.site
    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    if not rules:
        yield "  no automated messages are enabled at this site"
        return
    policy = PolicyCache().for_site(site)
    found = False
    # One ledger: the recall is weighed against the appointment texts, as in a pass.
    caps = SmsCaps(site.id, now)
    planned = chain(
        plan_site_appointments(site, rules, policy, now, patient_ids=[patient.id], caps=caps),
        daily.plan_patient_recalls(site, rules, policy, now, patient.id, caps),
    )
    for decision in planned:
        found = True
        yield _decision_line(decision)
    if not found:
        yield "  nothing to plan (no open appointments in the planning horizon, no recall due)"


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
