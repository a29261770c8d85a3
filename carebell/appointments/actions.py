"""The one way in for changes to appointments.

Every door — the staff app, an HL7 feed, FHIR, a CSV import, the API — calls
`save_appointment`, never `save()`: it validates (a ValidationError changes
nothing), saves, replans the appointment's messages in the same transaction (SPEC
§5.1) and audits the change with the staff member or the feed as actor. The admin
saves through its form and calls `appointment_saved`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from carebell import outbox
from carebell.appointments.models import Appointment
from carebell.audit import trail
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import AppointmentStatus, EntityType
from carebell.messaging.models import PENDING, OutboxMessage
from carebell.prepared import insert
from carebell.sql import insert_new
from carebell.validation import clean

_UNREAD = object()


def save_appointment(
    appointment, *, by=None, source: str = "carebell", now=None, previous=_UNREAD,
    key_checked: bool = False,
):  # fmt: skip
    """Create or change an appointment (time, status, type, provider, location …) and
    replan its messages. `by` is the staff member, or None with `source` naming the
    feed. Returns the appointment.

    A door that has just read the row (an upsert, under its lock) passes it as
    `previous` (a copy taken before changing it; None for a new one) and says
    `key_checked` when it looked the (site, source, external id) up: neither is read
    again. A new appointment's stored row is written in full; a changed one, only
    the columns that changed (and its update stamp)."""
    now = now or timezone.now()
    by_insert = appointment.pk is None and (previous is None or previous is _UNREAD)
    by_insert = by_insert and not key_checked
    _clean(appointment, key_checked=key_checked, by_insert=by_insert)
    with transaction.atomic(savepoint=False):  # the caller's transaction, if any, is ours
        taken = by_insert and not insert([appointment], unless_taken=_KEY_FIELDS)
        if not taken:
            previous = None if by_insert else _write(appointment, previous)
            appointment_saved(appointment, previous, now=now)
            trail.record_save(by, source, appointment, previous, now)
    if taken:  # told outside the block, so that the caller's transaction goes on
        return _taken(appointment, by=by, source=source, now=now)
    return appointment


def _write(appointment, previous):
    """Save `appointment` (`previous`: its stored row, None, or _UNREAD to read it);
    the row as it was."""
    if previous is _UNREAD:
        previous = _previous(appointment)
    if previous is None and appointment.pk is None:
        insert([appointment])  # save()'s INSERT, prepared (see _KEY_FIELDS)
    elif previous is None:
        appointment.save()
    else:
        _save_changed(appointment, previous)
    return previous


#: The unique constraint of (site, source, external id): a feed's key.
KEY = "appointment_external_id_unique"
#: A new appointment's INSERT skips a row whose key is taken (ON CONFLICT DO
#: NOTHING) instead of asking first whether it is (a query per create); a clash is
#: then told as `clean` tells it. A concurrent request's insert of the same key,
#: which the look-up let through to an IntegrityError, is refused the same way. No
#: signal listens to Appointment (tests/records/test_entry_points.py), so the INSERT is save()'s.
_KEY_FIELDS = ("site", "source", "external_id")


def _clean(appointment, *, key_checked: bool, by_insert: bool) -> None:
    """`clean`, the key left to the door's look-up or to the INSERT; when anything
    else fails, the whole of full_clean's errors (a taken key among them)."""
    try:
        clean(appointment, checked=(KEY,) if key_checked or by_insert else ())
    except ValidationError:
        if by_insert:
            clean(appointment)  # raises, with the key's clash too
        raise


def _taken(appointment, **how):
    """A new appointment whose INSERT found its key taken: the ValidationError
    `clean` gives, or, had the row gone meanwhile, a plain save."""
    clean(appointment)
    return save_appointment(appointment, previous=None, key_checked=True, **how)


def _previous(obj):
    return type(obj).objects.filter(pk=obj.pk).first() if obj.pk else None


def _save_changed(obj, previous) -> None:
    """Write the columns of `obj` that differ from `previous` (the stored row)."""
    names = [
        f.name for f in obj._meta.concrete_fields
        if not f.primary_key and f.name not in _COMPARED
        and getattr(obj, f.attname) != getattr(previous, f.attname)
    ]  # fmt: skip
    obj.save(update_fields=[*names, "updated_at"])


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
    from carebell.planning.replan import site_facts

    with transaction.atomic(savepoint=False):
        combined_with = []
        if why is not None:  # a new appointment is in no message yet
            combined_with = list(
                OutboxMessage.objects.filter(
                    subjects__entity_type=EntityType.APPOINTMENT,
                    subjects__entity_id=appointment.id,
                    status__in=PENDING,
                ).values_list("patient_id", flat=True)
            )
            # Keys given back: an occurrence that still applies (the same time at a new
            # location, a time moved back) is planned again below.
            outbox.cancel_pending_for(
                EntityType.APPOINTMENT, [appointment.id], [why], now, replanned=True
            )
        if not AppointmentStatus(appointment.status).is_open:
            return 0
        site, policy, rules = site_facts(appointment.site_id)
        if not rules:
            return 0
        writer = OutboxWriter(now)
        patients = {appointment.patient_id, *[p for p in combined_with if p]}
        _plan_day(writer, site, rules, policy, policy.local_date(appointment.starts_at), patients)
        writer.flush()
        return writer.offered


class Saved(NamedTuple):
    """What `save_appointments` did: rows created, changed, and left as they were."""

    created: int
    changed: int
    unchanged: int


_COMPARED = ("id", "created_at", "updated_at")


def save_appointments(appointments, *, by=None, source: str = "carebell", now=None) -> Saved:
    """Create or change many appointments of one site at once (an import), as
    `save_appointment` would one after the other: each is validated first — a
    ValidationError names the appointment's external id and changes nothing — then,
    in one transaction, the new ones are inserted and the changed ones updated in
    bulk, each change is audited (field names, never values), and the messages of
    the appointments whose time, status, location or patient changed are cancelled
    and planned again in one planner pass for their patients.

    An appointment without a pk whose (site, source, external id) is stored already
    is that appointment (upsert); one identical to its stored row is left alone,
    neither written nor audited."""
    now = now or timezone.now()
    appointments = list(appointments)
    if not appointments:
        return Saved(0, 0, 0)
    site_id = _one_site(appointments)
    _validate(appointments, site_id)
    with transaction.atomic():
        previous = _stored(site_id, appointments)
        new, changed, unchanged = [], [], 0
        for appointment in appointments:
            before = previous.get(_key(appointment))
            if before is None:
                new.append(appointment)
            elif _differs(appointment, before):
                appointment.pk, appointment.created_at = before.pk, before.created_at
                appointment.updated_at = timezone.now()
                changed.append((appointment, before))
            else:
                appointment.pk, appointment.created_at = before.pk, before.created_at
                appointment.updated_at, unchanged = before.updated_at, unchanged + 1
            appointment._state.adding = before is None
        insert_new(Appointment, new)
        fields = [f.name for f in Appointment._meta.concrete_fields if f.name not in _COMPARED]
        Appointment.objects.bulk_update([a for a, _ in changed], [*fields, "updated_at"], 1000)
        pairs = [(a, None) for a in new] + changed
        trail.record_saves(by, source, pairs, now, site_id=site_id)
        appointments_changed(site_id, pairs, now=now)
    return Saved(len(new), len(changed), unchanged)


def _one_site(appointments) -> int:
    sites = {a.site_id for a in appointments}
    if len(sites) != 1:
        raise ValueError("save_appointments saves the appointments of one site at a time.")
    return sites.pop()


def _validate(appointments, site_id: int) -> None:
    """Each appointment's fields, as full_clean checks them, less the queries it
    would make per row: the patients are checked with one, the upsert key replaces
    the unique check, and the status choice keeps to the CHECK constraint."""
    from django.core.exceptions import ValidationError

    from carebell.people.models import Patient

    seen = set()
    for a in appointments:
        try:
            a.full_clean(exclude=["site", "patient"], validate_unique=False,
                         validate_constraints=False)  # fmt: skip
        except ValidationError as error:
            raise ValidationError({a.external_id: error.messages}) from None
        if _key(a) in seen:
            raise ValidationError({a.external_id: ["This appointment appears twice."]})
        seen.add(_key(a))
    wanted = {a.patient_id for a in appointments}
    found = set(Patient.objects.filter(site_id=site_id, pk__in=wanted).values_list("pk", flat=True))
    for a in appointments:
        if a.patient_id not in found:
            raise ValidationError({a.external_id: ["The patient is not a patient of this site."]})


def _key(appointment) -> tuple:
    return (
        (appointment.source, appointment.external_id) if appointment.pk is None else appointment.pk
    )


def _stored(site_id: int, appointments) -> dict:
    """The stored rows of the appointments, by pk or by (source, external id)."""
    by_pk = [a.pk for a in appointments if a.pk is not None]
    keys = {(a.source, a.external_id) for a in appointments if a.pk is None}
    found = {}
    if by_pk:
        for row in Appointment.objects.filter(site_id=site_id, pk__in=by_pk):
            found[row.pk] = row
    for source in {s for s, _ in keys}:
        ids = [e for s, e in keys if s == source]
        rows = Appointment.objects.filter(site_id=site_id, source=source, external_id__in=ids)
        for row in rows:
            found[(row.source, row.external_id)] = row
    return found


def _differs(appointment, before) -> bool:
    return any(
        getattr(appointment, f.attname) != getattr(before, f.attname)
        for f in Appointment._meta.concrete_fields
        if f.name not in _COMPARED
    )


def appointments_changed(site_id: int, pairs, *, now: dt.datetime) -> int:
    """`appointment_saved` for many appointments of a site: `pairs` are (appointment
    as saved, the row as it was or None). The pending messages of each one whose
    change matters are cancelled with its reason (keys given back), and what now
    applies is planned one site-local day at a time, for the patients with an open
    appointment that day and the siblings a combined message listed with them.
    Returns rows planned."""
    from carebell.core.timing import AppointmentFacts, change_reason
    from carebell.planning.replan import site_facts

    def facts(a) -> AppointmentFacts:
        return AppointmentFacts(
            a.id, a.patient_id, a.site_id, a.starts_at, AppointmentStatus(a.status)
        )

    touched, cancel = [], defaultdict(list)
    new_ids = {a.id for a, before in pairs if before is None}
    for appointment, before in pairs:
        why = None if before is None else change_reason(facts(before), facts(appointment))
        if before is not None and why is None:
            if before.location_code == appointment.location_code:
                continue
            why = reason(Code.APPOINTMENT_MOVED)
        touched.append(appointment)
        if why is not None:
            cancel[why].append(appointment.id)
    if not touched:
        return 0
    open_ = [a for a in touched if AppointmentStatus(a.status).is_open]
    stored_before = [a.id for a in open_ if a.id not in new_ids]  # new ones are in no message
    siblings = set()
    if stored_before:
        combined = OutboxMessage.objects.filter(
            subjects__entity_type=EntityType.APPOINTMENT,
            subjects__entity_id__in=stored_before,
            status__in=PENDING,
        ).values_list("patient_id", flat=True)
        siblings = {p for p in combined if p}
    for why, ids in cancel.items():
        # Keys given back: an occurrence that still applies is planned again below.
        outbox.cancel_pending_for(EntityType.APPOINTMENT, ids, [why], now, replanned=True)
    if not open_:
        return 0
    site, policy, rules = site_facts(site_id)
    if not rules:
        return 0
    days: dict[dt.date, set[int]] = defaultdict(set)
    for a in open_:
        days[policy.local_date(a.starts_at)].add(a.patient_id)
    return _plan_days(site, rules, policy, now, days, siblings)


def _plan_days(site, rules, policy, now, days: dict[dt.date, set[int]], siblings) -> int:
    """Plan, one site-local day after another, the appointment messages of each day's
    patients and the `siblings` (as save_appointment plans each: the appointment's
    day, for its patient and the siblings listed with it, so no other day of those
    patients is planned). Returns rows planned.

    Each day is stored before the next is planned, and one SMS caps ledger serves
    every day: it reads a patient's stored texts on the first day the patient is
    planned (plan_site_appointments loads the day's patients it has not read), counts
    each day's texts as they are planned, so the next day's caps see what the outbox
    then holds, and forgets the patient after their last day. So it holds the texts
    of the patients of the days in flight, not the batch's (whose stored texts grow
    with every batch of a file that lists them again); reading them day by day is
    cheap because the ledger looks each patient up by the outbox's patient index. A
    day whose flush stored fewer rows than it was given (a key the outbox held
    already, and with it the stored row's time) has its patients' texts read again."""
    from carebell.outbox import OutboxWriter
    from carebell.planning.appointments import plan_site_appointments
    from carebell.planning.sms_caps import SmsCaps

    writer = OutboxWriter(now)
    caps = SmsCaps(site.id, now)
    ordered = sorted(days.items())
    last_day: dict[int, dt.date] = {}
    for day, on_the_day in ordered:
        last_day.update(dict.fromkeys(on_the_day, day))
    done: dict[dt.date, list[int]] = defaultdict(list)  # patients by their last day
    for patient_id, day in last_day.items():
        if patient_id not in siblings:  # siblings are planned every day
            done[day].append(patient_id)
    for day, on_the_day in ordered:
        patient_ids = sorted(on_the_day | siblings)
        offered, stored = writer.offered, writer.stored
        for decision in plan_site_appointments(
            site, rules, policy, now, policy.local_instant(day + dt.timedelta(days=1), _MIDNIGHT),
            start=policy.local_instant(day, _MIDNIGHT), patient_ids=patient_ids, caps=caps,
        ):  # fmt: skip
            writer.store(decision)
        writer.flush()
        if writer.stored - stored != writer.offered - offered:
            caps.forget(patient_ids)
        else:
            caps.forget(done.pop(day, ()))
    return writer.offered


_MIDNIGHT = dt.time(0)


def _plan_day(writer, site, rules, policy, day: dt.date, patient_ids) -> None:
    """Plan the appointment messages of `patient_ids` for one site-local `day` into
    `writer` (an OutboxWriter; a text the SMS caps keep back is stored as blocked)."""
    from carebell.planning.appointments import plan_site_appointments

    for decision in plan_site_appointments(
        site,
        rules,
        policy,
        writer.now,
        policy.local_instant(day + dt.timedelta(days=1), dt.time(0)),
        start=policy.local_instant(day, dt.time(0)),
        patient_ids=sorted(patient_ids),
    ):
        writer.store(decision)
