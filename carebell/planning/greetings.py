"""Greetings: birthday wishes (daily batch) and welcomes to new patients (every pass)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator

from django.db.models import Q

from carebell.core.schedule import plan_birthday, plan_welcome
from carebell.core.vocab import EntityType, PatientEvent
from carebell.people.models import Patient
from carebell.planning.pharmacy import Ids
from carebell.planning.subjects import EVENT_LOOKBACK, SitePass, Subject, fixed


def birthday_subjects(p: SitePass, patient_ids: Ids = None) -> Iterator[Subject]:
    """Active patients (of `patient_ids`, if given) whose birthday is today (29 February
    on 28 February in a common year, see schedule.birthday_in)."""
    today = p.today
    on = Q(birth_date__month=today.month, birth_date__day=today.day)
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        on |= Q(birth_date__month=2, birth_date__day=29)
    rows = _patients(p, patient_ids).filter(on).order_by("id")
    midnight, ends = p.midnight(today), p.midnight(today + dt.timedelta(days=1))
    for pid, first, last, born in rows.values_list("id", "first_name", "last_name", "birth_date"):

        def plan(ch, zone, born=born):
            return plan_birthday(p.policy, ch, born, today, p.now, zone)

        plan_for = fixed(f"p{pid}@{today.year}", plan)
        yield Subject(
            pid, f"{first} {last}", EntityType.PATIENT, [pid], midnight, plan_for, not_after=ends
        )


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
