"""Recalls (SPEC §5.1): a visit due by age or since the last visit, in the daily batch.

A recall rule's filters say where the due dates come from:
- `"ages": [1, 2, 4]`: each patient is due on the birthday of each of these ages;
- `"months_since_last_visit": 12`: due that many months after the last visit;
- neither: the site's recalls (`Recall` rows, e.g. from the practice system), or only
  those whose reason is in `"recall_reasons": [...]`.
Its offsets (`[{"days": 7}]`) announce the recall that many days before the due date
(default: on it). A recall is satisfied when completed, when a visit is booked, or when
the patient was seen since its message day (`schedule.recall_problem`). Each due recall
is announced once: its dedupe key names the recall and its due date, not the day.

Rows are read set-based: one query per source and rule, one per chunk of patients for
the visits booked ahead; the rest is `subjects.decide` (contacts, caps).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Min, Q

from carebell.appointments.models import Appointment, Recall
from carebell.core.reasons import Code, reason
from carebell.core.schedule import (
    RECALL_GRACE_DAYS,
    RecallFacts,
    plan_recall,
    recall_due_after_visit,
    recall_due_at_age,
)
from carebell.core.vocab import AppointmentStatus, EntityType, Kind
from carebell.messaging.models import AutomatedMessage
from carebell.people.models import Patient
from carebell.planning.decisions import Decision
from carebell.planning.subjects import SitePass, Subject, chunks, decide, fixed

_OPEN = [s.value for s in AppointmentStatus if s.is_open]
# Candidate rows are read with a little slack, then kept by their exact due date.
_SLACK = dt.timedelta(days=3)


def plan_recalls(
    p: SitePass, rule: AutomatedMessage, patient_ids: list[int] | None = None
) -> Iterator[Decision]:
    """The rule's recall messages due on the pass's day (optionally for some patients)."""
    yield from decide(p, rule, Kind.RECALL, recall_subjects(p, rule, patient_ids))


def lead_days(rule: AutomatedMessage) -> int:
    """How many days before the due date the rule announces a recall (its first day
    offset; 0 without one)."""
    for item in rule.offsets or []:
        if isinstance(item, dict) and _whole(item.get("days")) is not None:
            return max(0, _whole(item["days"]))
    return 0


def recall_subjects(
    p: SitePass, rule: AutomatedMessage, patient_ids: list[int] | None = None
) -> Iterator[Subject]:
    """One subject per recall whose message is due today or in the grace days since."""
    lead = lead_days(rule)
    # Due dates whose message day (due - lead) is in [today - grace, today].
    latest = p.today + dt.timedelta(days=lead)
    earliest = latest - dt.timedelta(days=RECALL_GRACE_DAYS)
    found = [
        *_by_age(p, rule, earliest, latest, patient_ids),
        *_since_visit(p, rule, earliest, latest, patient_ids),
        *_recall_rows(p, rule, earliest, latest, patient_ids),
    ]
    booked = _booked(p, sorted({f[0] for f in found}))
    for patient_id, name, due, last_visit, occurrence, why, entity in found:
        facts = RecallFacts(patient_id, due, False, last_visit, booked.get(patient_id))
        yield _subject(p, facts, name, occurrence, why, entity, lead)


def _subject(p: SitePass, facts: RecallFacts, name, occurrence, why, entity, lead) -> Subject:
    def plan(channel, zone):
        return plan_recall(p.policy, channel, facts, p.today, p.now, lead, zone)

    entity_type, entity_id = entity
    # No deadline: a recall the caps defer still goes, a day or two later.
    return Subject(
        facts.patient_id, name, entity_type, [entity_id], p.midnight(facts.due_on),
        fixed(occurrence, plan), (why,),
    )  # fmt: skip


def _by_age(p: SitePass, rule, earliest: dt.date, latest: dt.date, patient_ids) -> list[tuple]:
    ages = _whole_list((rule.filters or {}).get("ages"))
    if not ages:
        return []
    born = Q()
    for years in ages:
        born |= Q(
            birth_date__gte=_years_before(earliest, years) - _SLACK,
            birth_date__lte=_years_before(latest, years) + _SLACK,
        )
    out = []
    for pid, name, birth, seen in _patients(p, born, "birth_date", patient_ids):
        for years in ages:
            due = recall_due_at_age(birth, years)
            if earliest <= due <= latest:
                why = reason(Code.RECALL_DUE_AT_AGE, years=years, due=due)
                out.append(
                    (pid, name, due, seen, f"p{pid}:age{years}", why, (EntityType.PATIENT, pid))
                )
    return out


def _since_visit(p: SitePass, rule, earliest, latest, patient_ids) -> list[tuple]:
    months = _whole((rule.filters or {}).get("months_since_last_visit"))
    if months is None or months <= 0:
        return []
    seen_between = Q(
        last_visit_on__gte=_months_before(earliest, months) - _SLACK,
        last_visit_on__lte=_months_before(latest, months) + _SLACK,
    )
    out = []
    for pid, name, _, seen in _patients(p, seen_between, "last_visit_on", patient_ids):
        due = recall_due_after_visit(seen, months)
        if earliest <= due <= latest:
            why = reason(Code.RECALL_DUE_SINCE_VISIT, months=months, visit=seen, due=due)
            occurrence = f"p{pid}:seen{seen.isoformat()}+{months}m"
            out.append((pid, name, due, seen, occurrence, why, (EntityType.PATIENT, pid)))
    return out


def _recall_rows(p: SitePass, rule, earliest, latest, patient_ids) -> list[tuple]:
    filters = rule.filters or {}
    if _whole_list(filters.get("ages")) or _whole(filters.get("months_since_last_visit")):
        return []
    rows = Recall.objects.filter(
        site_id=p.site.id, patient__is_active=True, completed_at__isnull=True,
        due_on__gte=earliest, due_on__lte=latest,
    )  # fmt: skip
    reasons = filters.get("recall_reasons")
    if isinstance(reasons, list) and reasons:
        rows = rows.filter(reason__in=[str(r) for r in reasons])
    if patient_ids is not None:
        rows = rows.filter(patient_id__in=patient_ids)
    fields = ("id", "patient_id", "reason", "due_on", "patient__first_name",
              "patient__last_name", "patient__last_visit_on")  # fmt: skip
    out = []
    for rid, pid, what, due, first, last, seen in rows.order_by("id").values_list(*fields):
        why = reason(Code.RECALL_DUE, what=what, due=due)
        occurrence = f"c{rid}@{due.isoformat()}"
        out.append((pid, f"{first} {last}", due, seen, occurrence, why, (EntityType.RECALL, rid)))
    return out


def _patients(p: SitePass, where: Q, column: str, patient_ids) -> Iterator[tuple]:
    rows = Patient.objects.filter(where, site_id=p.site.id, is_active=True)
    if patient_ids is not None:
        rows = rows.filter(id__in=patient_ids)
    fields = ("id", "first_name", "last_name", column, "last_visit_on")
    for pid, first, last, value, seen in rows.order_by("id").values_list(*fields):
        yield pid, f"{first} {last}", value, seen


def _booked(p: SitePass, patient_ids: list[int]) -> dict[int, dt.datetime]:
    """The start of each patient's first open appointment from now on."""
    found: dict[int, dt.datetime] = {}
    for chunk in chunks(patient_ids):
        rows = Appointment.objects.filter(
            site_id=p.site.id, patient_id__in=chunk, status__in=_OPEN, starts_at__gte=p.now
        )
        for row in rows.values("patient_id").annotate(first=Min("starts_at")).order_by():
            found[row["patient_id"]] = row["first"]
    return found


def _years_before(day: dt.date, years: int) -> dt.date:
    if (day.month, day.day) == (2, 29):
        day -= dt.timedelta(days=1)
    return day.replace(year=day.year - years)


def _months_before(day: dt.date, months: int) -> dt.date:
    return recall_due_after_visit(day, -months)


def _whole(value: object) -> int | None:
    # Rule filters are staff-edited JSON: anything but a whole number is ignored.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _whole_list(value: object) -> list[int]:
    if not isinstance(value, list):
        return []
    return sorted({n for n in (_whole(v) for v in value) if n is not None and n >= 0})
