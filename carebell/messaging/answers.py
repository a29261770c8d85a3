"""A contact's answer to a confirmation request — by text, key press or link — applied
to the appointments it is about (SPEC §5.3, §7.3). One place, whatever the channel."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from django.db import transaction

from carebell.appointments.models import Appointment, CancellationRequest
from carebell.core.cancellation import CancellationEffect, decide_cancellation
from carebell.core.vocab import AppointmentStatus, CancellationMode, Kind
from carebell.inbox.models import StaffNotification
from carebell.messaging import actions
from carebell.messaging.models import OutboundEvent
from carebell.sites.models import Site


class Answer(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"


def answer_appointments(
    site: Site, answer: Answer, appointment_ids: list[int], *, via: str, now: dt.datetime
) -> list[tuple[Appointment, Kind | None]]:
    """Apply `answer` to each appointment; returns each with the kind of reply the
    contact should get (None: no reply)."""
    with transaction.atomic():
        appointments = Appointment.objects.select_for_update().filter(
            site=site, id__in=appointment_ids
        )
        if answer is Answer.CONFIRM:
            return [(a, confirm(a, now)) for a in appointments]
        return [(a, request_cancellation(site, a, via=via, now=now)) for a in appointments]


def confirm(appointment: Appointment, now: dt.datetime) -> None:
    if not AppointmentStatus(appointment.status).is_open:
        return None
    appointment.status, appointment.confirmed_at = AppointmentStatus.CONFIRMED, now
    appointment.save(update_fields=["status", "confirmed_at", "updated_at"])
    emit(appointment.site, "appointment.confirmed", {"appointment": appointment.external_id}, now)
    return None


def request_cancellation(site: Site, appointment: Appointment, *, via: str, now) -> Kind:
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
        actions.cancel_pending_for("appointment", [appointment.id], decision.reasons, now)
    if CancellationEffect.EMIT_CANCELLATION_EVENT in effects:
        emit(site, "appointment.cancelled", {"appointment": appointment.external_id}, now)
    if CancellationEffect.NOTIFY_DEPARTMENT in effects:
        StaffNotification.objects.create(
            site=site,
            department=delivery.cancellation_department,
            kind="cancellation",
            text=decision.reasons[0].message,
            entity_type="appointment",
            entity_id=appointment.id,
            created_at=now,
        )
    return decision.reply_kind


def emit(site: Site, event_type: str, payload: dict, now: dt.datetime) -> None:
    """Queue an event for the source system's webhook feed (SPEC §9)."""
    OutboundEvent.objects.create(site=site, event_type=event_type, payload=payload, created_at=now)
