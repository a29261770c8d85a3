"""Greetings: birthday wishes (daily batch) and welcomes to new patients (every pass)."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import operator
from collections.abc import Iterator

from django.db.models import Q

from carebell.core.schedule import birthday_in, plan_birthday, plan_welcome
from carebell.core.vocab import EntityType, PatientEvent
from carebell.people.models import Patient
from carebell.planning.pharmacy import Ids, Only
from carebell.planning.subjects import EVENT_LOOKBACK, SitePass, Subject, fixed

_FIELDS = ("id", "first_name", "last_name", "birth_date")


def birthday_subjects(p: SitePass, only: Only | None = None) -> Iterator[Subject]:
    """Active patients (of `only`'s, if given) whose birthday is today (29 February on
    28 February in a common year, see schedule.birthday_in)."""
    today = p.today
    if only is None:
        rows = list(_patients(p, None).filter(_born_on(today)).order_by("id").values_list(*_FIELDS))
    else:  # read once: born on any day of the batches; this day keeps its own
        rows = only.read("birthdays", lambda: _born_on_any(p, only))
        rows = [row for row in rows if birthday_in(today.year, row[3]) == today]
    midnight, ends = p.midnight(today), p.midnight(today + dt.timedelta(days=1))
    for pid, first, last, born in rows:

        def plan(ch, zone, born=born):
            return plan_birthday(p.policy, ch, born, today, p.now, zone)

        plan_for = fixed(f"p{pid}@{today.year}", plan)
        yield Subject(
            pid, f"{first} {last}", EntityType.PATIENT, [pid], midnight, plan_for, not_after=ends
        )


def _born_on_any(p: SitePass, only: Only) -> list[tuple]:
    every = functools.reduce(operator.or_, (_born_on(day) for day in only.days))
    found = _patients(p, only.patient_ids).filter(every).order_by("id")
    return list(found.values_list(*_FIELDS))


def _born_on(day: dt.date) -> Q:
    """Born on the month and day of `day` (or on 29 February, for 28 February of a
    common year): whose birthday is celebrated on `day`."""
    on = Q(birth_date__month=day.month, birth_date__day=day.day)
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        on |= Q(birth_date__month=2, birth_date__day=29)
    return on


def welcome_subjects(p: SitePass, patient_ids: Ids = None) -> Iterator[Subject]:
    """Patients (of `patient_ids`, if given) added, or who consented, per the site, in
    the last EVENT_LOOKBACK."""
    event = p.rx.welcome_on
    column = "consented_at" if event is PatientEvent.CONSENTED else "created_at"
    recent = {f"{column}__gte": p.now - EVENT_LOOKBACK}
    rows = _patients(p, patient_ids).filter(**recent).order_by("id")
    for pid, first, last, at in rows.values_list("id", "first_name", "last_name", column):

        def plan(ch, zone, at=at):
            return plan_welcome(p.policy, ch, event, at, p.rx, p.now, zone)

        yield Subject(pid, f"{first} {last}", EntityType.PATIENT, [pid], at, fixed(f"p{pid}", plan))


def _patients(p: SitePass, patient_ids: Ids):
    rows = Patient.objects.filter(site_id=p.site.id, is_active=True)
    return rows if patient_ids is None else rows.filter(id__in=sorted(set(patient_ids)))
