"""A contact's answer to a confirmation request — by text, key press or link — applied
to the appointments it is about (SPEC §5.3, §7.3). One place, whatever the channel.

An answer is applied once. Whether it is a repeat is read from what it already did —
the appointment is confirmed; an open cancellation request from the same contact
exists; the call's key press is already recorded — so a replayed link, text or key
press changes nothing (no second request, staff notification or outbound event) and
the contact is told it was already received.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from django.db import IntegrityError, transaction

from carebell import events, outbox
from carebell.appointments.models import Appointment, CancellationRequest
from carebell.core.cancellation import CancellationEffect, decide_cancellation
from carebell.core.keywords import Intent
from carebell.core.vocab import AppointmentStatus, CancellationMode, Channel, EntityType, Kind
from carebell.inbox import notifications
from carebell.messaging.models import InboundMessage
from carebell.people.models import ContactPoint
from carebell.sites.models import Site

#: The intents an answer may carry, whether texted, a link's button or a key
#: pressed (the words are `core.keywords`'; the intents are defined there once).
ANSWERS = frozenset({Intent.CONFIRM, Intent.CANCEL})


def read_answer(value: str) -> Intent | None:
    """The answer a form or key names ("confirm", "cancel"), or None for anything else."""
    try:
        intent = Intent(value)
    except ValueError:
        return None
    return intent if intent in ANSWERS else None


class Answered(NamedTuple):
    """What became of the answer for one appointment: the kind of reply owed to the
    contact (None: no reply), and whether the answer had already been applied."""

    appointment: Appointment
    reply_kind: Kind | None
    repeated: bool = False


@dataclass(frozen=True, slots=True)
class KeyPress:
    """A key pressed during a call: one answer per call attempt."""

    attempt_id: int
    provider: str
    digits: str
    raw: dict


#: Appointment states in which a cancellation request has taken effect.
CANCELLED_BY_REQUEST = (AppointmentStatus.CANCEL_REQUESTED, AppointmentStatus.CANCELLED)


def answer_appointments(
    site: Site,
    answer: Intent,
    appointment_ids: Iterable[int],
    *,
    via: str,
    now: dt.datetime,
    address: str = "",
    key_press: KeyPress | None = None,
) -> list[Answered]:
    """Apply `answer` to each appointment of `site`, once. `address` is the number or
    email the answer came from (it names the contact); `key_press`, for a call, the
    key and its attempt (a second press recorded for the same attempt is a repeat)."""
    with transaction.atomic():
        appointments = list(
            Appointment.objects.select_for_update()
            .filter(site=site, id__in=list(appointment_ids))
            .order_by("starts_at", "id")
        )
        if key_press is not None and not _record_key_press(site, key_press, answer, address, now):
            return [_repeat(a, answer, contact) for a, contact in _contacts(appointments, address)]
        return [
            _apply(site, a, answer, contact, via=via, now=now)
            for a, contact in _contacts(appointments, address)
        ]


def _apply(site, appointment, answer: Intent, contact_id, *, via: str, now) -> Answered:
    if _is_repeat(appointment, answer, contact_id):
        return _repeat(appointment, answer, contact_id)
    if answer is Intent.CONFIRM:
        return Answered(appointment, confirm(appointment, now))
    kind = request_cancellation(site, appointment, via=via, now=now, contact_id=contact_id)
    return Answered(appointment, kind)


def _is_repeat(appointment: Appointment, answer: Intent, contact_id: int | None) -> bool:
    """True when this answer from this contact is already in force."""
    status = AppointmentStatus(appointment.status)
    if answer is Intent.CONFIRM:
        return status is AppointmentStatus.CONFIRMED
    request = _open_request(appointment, contact_id)
    return request is not None and (not request.accepted or status in CANCELLED_BY_REQUEST)


def _repeat(appointment: Appointment, answer: Intent, contact_id: int | None) -> Answered:
    """The reply a repeated answer gets: the one the first answer got."""
    if answer is Intent.CONFIRM:
        return Answered(appointment, None, repeated=True)
    request = _open_request(appointment, contact_id)
    refused = request is not None and not request.accepted
    kind = Kind.APPT_CANCEL_REFUSED if refused else Kind.APPT_CANCEL_ACK
    return Answered(appointment, kind, repeated=True)


def _open_request(appointment: Appointment, contact_id: int | None):
    """The contact's latest cancellation request for the appointment that staff have
    not handled yet."""
    return (
        CancellationRequest.objects.filter(
            appointment=appointment, contact_id=contact_id, handled_at__isnull=True
        )
        .order_by("-received_at", "-id")
        .first()
    )


def _contacts(appointments: list[Appointment], address: str):
    """Each appointment with the id of the patient's contact who owns `address`."""
    by_patient: dict[int, int] = {}
    if not address:
        return [(a, None) for a in appointments]
    points = ContactPoint.objects.filter(
        value=address, contact__patient_id__in={a.patient_id for a in appointments}
    ).order_by("contact__position", "contact_id")
    for patient_id, contact_id in points.values_list("contact__patient_id", "contact_id"):
        by_patient.setdefault(patient_id, contact_id)  # the first contact who owns it
    return [(a, by_patient.get(a.patient_id)) for a in appointments]


def _record_key_press(site, key_press: KeyPress, answer: Intent, address: str, now) -> bool:
    """Keep the key press (SPEC §7.1: stored raw, once); False if its attempt already
    has one."""
    try:
        with transaction.atomic():
            InboundMessage.objects.create(
                site=site,
                channel=Channel.CALL,
                provider=key_press.provider,
                provider_message_id=f"keypress:{key_press.attempt_id}",
                from_address=address,
                body=key_press.digits,
                raw=key_press.raw,
                intent=answer.value,
                received_at=now,
            )
    except IntegrityError:
        return False
    return True


def confirm(appointment: Appointment, now: dt.datetime) -> None:
    """Confirm an open appointment that has not started; anything else changes nothing."""
    if not AppointmentStatus(appointment.status).is_open or appointment.starts_at <= now:
        return None
    appointment.status, appointment.confirmed_at = AppointmentStatus.CONFIRMED, now
    appointment.save(update_fields=["status", "confirmed_at", "updated_at"])
    events.emit(
        appointment.site_id, "appointment.confirmed", events.appointment_data(appointment), now
    )
    return None


def request_cancellation(
    site: Site, appointment: Appointment, *, via: str, now, contact_id: int | None = None
) -> Kind:
    """Accept or refuse a cancel request by the site's mode and deadline and carry
    out the decision's effects. Returns the kind of reply owed to the contact."""
    delivery = site.delivery
    decision = decide_cancellation(
        CancellationMode(delivery.cancellation_mode),
        delivery.cancellation_deadline_hours,
        now,
        appointment.starts_at,
        AppointmentStatus(appointment.status),
        delivery.track_cancellations,
    )
    effects = decision.effects
    CancellationRequest.objects.create(
        appointment=appointment,
        contact_id=contact_id,
        received_at=now,
        via=via,
        accepted=decision.accepted,
        reason=decision.reasons[0].code.value,
    )
    if CancellationEffect.CANCEL_APPOINTMENT in effects:
        appointment.status, appointment.cancelled_at = AppointmentStatus.CANCELLED, now
    elif CancellationEffect.RECORD_REQUEST in effects:
        appointment.status = AppointmentStatus.CANCEL_REQUESTED
    appointment.save(update_fields=["status", "cancelled_at", "updated_at"])
    if CancellationEffect.STOP_MESSAGES in effects:
        outbox.cancel_pending_for(EntityType.APPOINTMENT, [appointment.id], decision.reasons, now)
    # Every request, accepted or not, tells the source system the patient will not
    # come; `accepted` says whether carebell took it (SPEC §5.3).
    events.emit(
        site,
        "appointment.cancellation_requested",
        events.appointment_data(appointment, accepted=decision.accepted, via=via),
        now,
    )
    if CancellationEffect.EMIT_CANCELLATION_EVENT in effects:
        events.emit(site, "appointment.cancelled", events.appointment_data(appointment), now)
    if CancellationEffect.NOTIFY_DEPARTMENT in effects:
        notifications.notify_cancellation(site, appointment, decision.reasons[0], via=via, now=now)
    return decision.reply_kind


def distinct_groups(groups: Iterable[list[int]]) -> list[list[int]]:
    """The appointments of the contact's open requests, each set once and in order: a
    visit asked about by text and by call is one visit to answer, not two to pick
    from."""
    seen: dict[frozenset[int], list[int]] = {}
    for group in groups:
        if group:
            seen.setdefault(frozenset(group), list(dict.fromkeys(group)))
    return list(seen.values())
