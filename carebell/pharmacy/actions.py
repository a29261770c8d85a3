"""The one way in for changes to prescriptions and fills (SPEC §5.4).

Every door — the staff app, HL7 RDE/RDS, FHIR MedicationRequest/-Dispense, a CSV
import, the API — calls `save_prescription` and `save_fill`, never `save()`: each
validates (a ValidationError changes nothing), saves, stops or replans what the
change affects in the same transaction, and audits it with the staff member or the
feed as actor.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from carebell import outbox
from carebell.audit import trail
from carebell.core.reasons import Code, reason
from carebell.core.vocab import EntityType, Kind, PrescriptionStatus
from carebell.validation import clean


def save_prescription(prescription, *, by=None, source: str = "carebell", now=None):
    """Create or change a prescription. When what its refill reminders read changed
    (status, refills left, supply, maintenance flag), its pending reminders are
    cancelled and give their keys back: the planner's next pass plans what the new
    facts call for (none for an inactive prescription), so none planned under the
    old facts goes out."""
    now = now or timezone.now()
    clean(prescription)
    with transaction.atomic(savepoint=False):  # the caller's transaction, if any, is ours
        previous = _previous(prescription)
        prescription.save()
        if previous is not None and _refill_facts(previous) != _refill_facts(prescription):
            why = reason(_refill_change(prescription))
            outbox.cancel_pending_for(
                EntityType.PRESCRIPTION, [prescription.id], [why], now, replanned=True
            )
        trail.record_save(by, source, prescription, previous, now)
    return prescription


def save_fill(fill, *, by=None, source: str = "carebell", now=None):
    """Create or change a fill (its step and the time it reached it): a fill picked
    up or returned to stock stops its pending ready notices at once; the planner's
    next pass plans what the new step calls for."""
    now = now or timezone.now()
    clean(fill)
    with transaction.atomic(savepoint=False):
        previous = _previous(fill)
        fill.save()
        if previous is None or previous.step != fill.step:
            fill_changed(fill, now=now)
        trail.record_save(by, source, fill, previous, now)
    return fill


def _previous(obj):
    return type(obj).objects.filter(pk=obj.pk).first() if obj.pk else None


def _refill_change(rx) -> Code:
    """Why a prescription's pending refill reminders were withdrawn."""
    if rx.status != PrescriptionStatus.ACTIVE:
        return Code.RX_NOT_ACTIVE
    if rx.refills_remaining == 0:
        return Code.NO_REFILLS_REMAINING
    if not rx.is_maintenance:
        return Code.NOT_MAINTENANCE
    return Code.REFILLED  # a new supply: the next pass plans from it


def _refill_facts(rx) -> tuple:
    return (rx.status, rx.refills_remaining, rx.days_supply, rx.is_maintenance, rx.patient_id)


def fill_changed(fill, *, now: dt.datetime) -> int:
    """A fill moved on: once picked up or returned to stock, its pending ready notices
    and pickup reminders stop, in the transaction of the change (SPEC §5.4). The next
    planner pass plans what now applies (a pickup confirmation, a review request)."""
    stopped = {"picked_up": Code.PICKED_UP, "returned_to_stock": Code.RETURNED_TO_STOCK}
    code = stopped.get(fill.step)
    if code is None:
        return 0
    return outbox.cancel_pending_for(
        EntityType.FILL,
        [fill.id],
        [reason(code)],
        now,
        kinds=[Kind.RX_READY, Kind.RX_PICKUP_REMINDER],
    )
