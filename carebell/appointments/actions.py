"""The one way in for changes to appointments.

Every door — the staff app, an HL7 feed, FHIR, a CSV import, the API — calls
`save_appointment`, never `save()`: it validates (a ValidationError changes
nothing), saves, replans the appointment's messages in the same transaction (SPEC
§5.1) and audits the change with the staff member or the feed as actor. The admin
saves through its form and calls `appointment_saved`.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from carebell import outbox
from carebell.audit import trail
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import AppointmentStatus, EntityType
from carebell.messaging.models import PENDING, AutomatedMessage, OutboxMessage


def save_appointment(appointment, *, by=None, source: str = "carebell", now=None):
    """Create or change an appointment (time, status, type, provider, location …) and
    replan its messages. `by` is the staff member, or None with `source` naming the
    feed. Returns the appointment."""
    now = now or timezone.now()
    appointment.full_clean()
    with transaction.atomic():
        previous = _previous(appointment)
        appointment.save()
        appointment_saved(appointment, previous, now=now)
        trail.record_save(by, source, appointment, previous, now)
    return appointment


def _previous(obj):
    return type(obj).objects.filter(pk=obj.pk).first() if obj.pk else None


def appointment_saved(appointment, previous, *, now: dt.datetime) -> int:
    """Call after saving `appointment` (`previous`: the row as it was, None for a new
    one): replans its messages when the change matters to them (time, status,
    location, patient). Returns rows planned."""
    from carebell.core.timing import AppointmentFacts, change_reason

    if previous is None:
        return appointment_changed(appointment, now=now, why=None)

    def facts(a) -> AppointmentFacts:
        return AppointmentFacts(
            a.id, a.patient_id, a.site_id, a.starts_at, AppointmentStatus(a.status)
        )

    why = change_reason(facts(previous), facts(appointment))
    if why is None and previous.location_code == appointment.location_code:
        return 0
    return appointment_changed(appointment, now=now, why=why or reason(Code.APPOINTMENT_MOVED))


def appointment_changed(appointment, *, now: dt.datetime, why: Reason | None) -> int:
    """Replan an appointment's messages in the transaction of its change (SPEC §5.1):
    pending ones are cancelled with `why` (None for a new appointment), and what now
    applies is planned again, for its siblings too when a combined message listed
    them. Returns rows planned."""
    from carebell.outbox import OutboxWriter
    from carebell.planning.appointments import plan_site_appointments
    from carebell.planning.policies import PolicyCache

    with transaction.atomic():
        combined_with = list(
            OutboxMessage.objects.filter(
                subjects__entity_type=EntityType.APPOINTMENT,
                subjects__entity_id=appointment.id,
                status__in=PENDING,
            ).values_list("patient_id", flat=True)
        )
        if why is not None:
            # Keys given back: an occurrence that still applies (the same time at a new
            # location, a time moved back) is planned again below.
            outbox.cancel_pending_for(
                EntityType.APPOINTMENT, [appointment.id], [why], now, replanned=True
            )
        rules = list(AutomatedMessage.objects.filter(site_id=appointment.site_id, enabled=True))
        if not rules or not AppointmentStatus(appointment.status).is_open:
            return 0
        site = appointment.site
        policy = PolicyCache().for_site(site)
        day = policy.local_date(appointment.starts_at)
        writer = OutboxWriter(now)
        for decision in plan_site_appointments(
            site,
            rules,
            policy,
            now,
            policy.local_instant(day + dt.timedelta(days=1), dt.time(0)),
            start=policy.local_instant(day, dt.time(0)),
            patient_ids=sorted({appointment.patient_id, *[p for p in combined_with if p]}),
        ):
            writer.store(decision)  # a text the SMS caps keep back is stored as blocked
        writer.flush()
        return writer.offered
