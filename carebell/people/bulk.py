"""The one way in for many patients, contacts, contact points and preferences at
once (a CSV import's batch), set-based.

`save_people` does what `people.actions` does one record after another — validate,
save, take each new or changed number's verification, consent and opt-out state,
apply a pharmacy's patient defaults to a first contact added, replan the patients,
audit every create and change with the field names — but with a query or two per
table for the whole batch instead of several per record: the stored rows are read
once, the new ones inserted with one INSERT per table, the changed ones updated with
one UPDATE per table, the audit entries inserted together, and the touched patients
replanned in one pass (`replan.replan_patients`, or at the end of an enclosing
`replan.once_at_end`).

Validation is split as the bulk work needs it: each record's own fields are checked
with no query (`field_errors`, which the CSV dry run also reports from, so it
refuses what this would refuse); that every record belongs to the site is checked
with one query; uniqueness and the CHECK constraints are the database's (an
IntegrityError rolls the whole call back).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from carebell.audit import trail
from carebell.core.reasons import Code, reason
from carebell.core.vocab import PatientEvent, SiteKind
from carebell.people import actions
from carebell.people.models import (
    ConsentRecord,
    Contact,
    ContactPoint,
    ContactPreference,
    OptOutEvent,
    Patient,
)

#: Not compared nor audited: as trail.record_save leaves them out.
_NOT_COMPARED = frozenset({"id", "created_at", "updated_at"})


class Saved(NamedTuple):
    """How many records `save_people` created and changed, of each kind."""

    patients: tuple[int, int]
    contacts: tuple[int, int]
    points: tuple[int, int]
    preferences: tuple[int, int]


def field_errors(obj: Model) -> dict[str, list[str]]:
    """The problems of `obj`'s own fields as full_clean finds them, by field name,
    without a query: foreign keys, uniqueness and constraints are left to the
    caller (the batch checks them set-based)."""
    exclude = [f.name for f in obj._meta.concrete_fields if f.is_relation]
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        return error.message_dict
    return {}


def save_people(
    site,
    *,
    patients: Iterable[Patient] = (),
    contacts: Iterable[Contact] = (),
    points: Iterable[ContactPoint] = (),
    preferences: Iterable[tuple[Contact, str, str]] = (),
    by=None,
    source: str = "carebell",
    now: dt.datetime | None = None,
) -> Saved:
    """Create or change these records of `site`'s patients in one transaction, as
    the entry points of `people.actions` would one after the other (see the module
    docstring). A contact may name a patient of `patients` not saved yet, a point a
    contact of `contacts`; `preferences` are (contact, category, value), a value
    equal to the stored one left alone, as is a record equal to its stored row.
    Raises ValidationError (nothing written) for a record whose fields are wrong or
    that is not of `site`."""
    now = now or timezone.now()
    patients, contacts, points = list(patients), list(contacts), list(points)
    preferences = list(preferences)
    owners = _validate(site, patients, contacts, points, preferences)
    with transaction.atomic():
        batch = _Batch(site, owners, by=by, source=source, now=now)
        saved_patients = batch.save(Patient, patients)
        saved_contacts = batch.save(Contact, contacts)
        # Before the given preferences, which then win over the defaults, as they do
        # when save_contact runs before set_preference.
        batch.apply_site_defaults()
        done = Saved(saved_patients, saved_contacts, batch.save_points(points),
                     batch.save_preferences(preferences))  # fmt: skip
        batch.audit()
        batch.replan()
    return done


def _validate(site, patients, contacts, points, preferences) -> dict[int, int]:
    """Each record's fields, and that all are of `site`'s patients (one query for the
    contacts named by id, one for the patients). Returns contact id → patient id of
    the contacts named by id."""
    chosen = [ContactPreference(category=c, value=v) for _, c, v in preferences]
    for obj in (*patients, *contacts, *points, *chosen):
        errors = field_errors(obj)
        if errors:
            said = f"{obj._meta.verbose_name} {obj.pk or '(new)'}"
            raise ValidationError({said: [m for ms in errors.values() for m in ms]})
    foreign = ValidationError("A record is not of a patient of this site.")
    new_patients = {id(p) for p in patients if p.pk is None}
    new_contacts = {id(c) for c in contacts if c.pk is None}
    their_contacts = [*(p.contact for p in points if p.contact_id is None),
                      *(c for c, _, _ in preferences if c.pk is None)]  # fmt: skip
    if (
        any(p.site_id != site.pk for p in patients)
        or any(c.patient_id is None and id(c.patient) not in new_patients for c in contacts)
        or any(id(c) not in new_contacts for c in their_contacts)
    ):
        raise foreign
    wanted = {p.contact_id for p in points if p.contact_id is not None}
    wanted |= {c.pk for c, _, _ in preferences if c.pk is not None}
    owners = dict(Contact.objects.filter(pk__in=wanted).values_list("pk", "patient_id"))
    patient_ids = {c.patient_id for c in contacts if c.patient_id is not None}
    patient_ids |= set(owners.values())
    found = Patient.objects.filter(site=site, pk__in=patient_ids).count()
    if len(owners) != len(wanted) or found != len(patient_ids):
        raise foreign
    return owners


class _Batch:
    """The records saved so far, their rows as they were, and the patients touched."""

    def __init__(self, site, owners: dict[int, int], *, by, source: str, now) -> None:
        self.site, self.by, self.source, self.now = site, by, source, now
        self.owners = dict(owners)  # contact id → patient id
        self.pairs: list[tuple[Model, Model | None]] = []  # (saved, as it was)
        self.patient_ids: set[int] = set()
        self.added_first_contacts: list[Contact] = []
        self.consenting: list[Patient] = []

    def save(self, model, objs: list[Model]) -> tuple[int, int]:
        """Insert the new ones, update the changed ones; returns (created, changed)."""
        stored = _stored(model, objs)
        if model is Patient:
            self.consenting = [
                p for p in objs if p.consented_at is not None
                and (p.pk is None or stored[p.pk].consented_at is None)
            ]  # fmt: skip
        if model is Contact:
            self.added_first_contacts = [c for c in objs if c.pk is None and c.position == 1]
        new, changed = self._write(model, objs, stored)
        for obj in (*new, *changed):
            if model is Contact:
                self.owners[obj.pk] = obj.patient_id
            self.patient_ids.add(obj.pk if model is Patient else obj.patient_id)
        return len(new), len(changed)

    def _write(self, model, objs, stored) -> tuple[list, list]:
        new = [o for o in objs if o.pk is None]
        changed = [o for o in objs if o.pk is not None and _differs(o, stored[o.pk])]
        model.objects.bulk_create(new)  # the pks come back, for the rows that name them
        at = timezone.now()  # as auto_now sets it on save()
        for obj in changed:
            obj.updated_at = at
        names = [f.name for f in model._meta.concrete_fields if f.name not in _NOT_COMPARED]
        model.objects.bulk_update(changed, [*names, "updated_at"], batch_size=1000)
        self.pairs += [(o, None) for o in new] + [(o, stored[o.pk]) for o in changed]
        return new, changed

    def save_points(self, points: list[ContactPoint]) -> tuple[int, int]:
        """As save_contact_point: a new or changed value takes its state; an opt-out
        flag toggled by hand is recorded for every point with the value."""
        stored = _stored(ContactPoint, points)
        moved = [p for p in points if p.pk is None or stored[p.pk].value != p.value]
        opted_out = _latest_opt_outs(self.site.pk, {p.value for p in moved})
        consented = _consents([p for p in moved if p.pk is not None])
        for point in moved:
            actions.take_address_state(point, stored.get(point.pk), opted_out.get(point.value, {}),
                                       consented.get((point.pk, point.value), {}))  # fmt: skip
        moved_ids = {id(p) for p in moved}
        toggles = [
            (point.value, channel, opted)
            for point in points if id(point) not in moved_ids
            for channel, opted in actions._toggled_opt_outs(point, stored[point.pk]).items()
        ]  # fmt: skip
        new, changed = self._write(ContactPoint, points, stored)
        for value, channel, opted in toggles:
            actions._staff_opt_out(self.site.pk, value, channel, opted, self.now)
        self._touch([*new, *changed])
        return len(new), len(changed)

    def save_preferences(self, wanted: list[tuple[Contact, str, str]]) -> tuple[int, int]:
        rows = ContactPreference.objects.filter(contact_id__in={c.pk for c, _, _ in wanted})
        existing = {(p.contact_id, p.category): p for p in rows}
        objs = []
        for contact, category, value in wanted:
            row = existing.get((contact.pk, category))
            if row is None:
                row = ContactPreference(contact=contact, category=category)
                existing[(contact.pk, category)] = row
            row.value = value
            objs.append(row)
        new, changed = self._write(ContactPreference, objs, _stored(ContactPreference, objs))
        self._touch([*new, *changed])
        return len(new), len(changed)

    def _touch(self, objs) -> None:
        """The patients of these points' or preferences' contacts are replanned."""
        self.patient_ids.update(self.owners[obj.contact_id] for obj in objs)

    def apply_site_defaults(self) -> None:
        """A pharmacy's patient defaults, as save_patient and save_contact apply them
        (a clinic has none: no query for it)."""
        if self.site.kind != SiteKind.PHARMACY:
            return
        options = {"by": self.by, "source": self.source, "now": self.now}
        for patient in self.consenting:
            actions._apply_site_defaults(patient, PatientEvent.CONSENTED, **options)
        for contact in self.added_first_contacts:
            actions._apply_site_defaults(contact.patient, PatientEvent.ADDED, **options)

    def audit(self) -> None:
        """One entry per record created or changed, as trail.record_save writes it
        (the names of the fields that changed, never their values), in one INSERT."""
        trail.record_saves(self.by, self.source, self.pairs, self.now, site_id=self.site.pk)

    def replan(self) -> None:
        from carebell.planning.replan import replan_patients

        why = reason(Code.RECIPIENT_CHANGED)
        replan_patients(self.site, self.patient_ids, now=self.now, why=why)


def _stored(model, objs) -> dict[int, Model]:
    """The stored rows of the objects that have one, by pk (one query)."""
    pks = [o.pk for o in objs if o.pk is not None]
    return model.objects.in_bulk(pks) if pks else {}


def _differs(obj: Model, before: Model) -> bool:
    return any(
        getattr(obj, f.attname) != getattr(before, f.attname)
        for f in obj._meta.concrete_fields
        if f.attname not in _NOT_COMPARED
    )


def _latest_opt_outs(site_id: int, values: set[str]) -> dict[str, dict[str, bool]]:
    """value → channel → the site's latest opt-out (True) or opt-in (False)."""
    latest: dict[str, dict[str, bool]] = defaultdict(dict)
    rows = OptOutEvent.objects.filter(site_id=site_id, address__in=values)
    for address, channel, opted_out in rows.values_list("address", "channel", "opted_out"):
        latest[address].setdefault(channel, opted_out)  # newest first (the model's order)
    return latest


def _consents(points) -> dict[tuple[int, str], dict[str, bool]]:
    """(point, value) → channel → whether the point's newest record for the value
    grants it."""
    latest: dict[tuple[int, str], dict[str, bool]] = defaultdict(dict)
    rows = ConsentRecord.objects.filter(contact_point__in=[p.pk for p in points])
    for point_id, address, channel, action in rows.values_list(
        "contact_point_id", "address", "channel", "action"
    ):
        latest[(point_id, address)].setdefault(channel, action == ConsentRecord.Action.GRANT)
    return latest
