"""Refill reminders: refill due, refill past due and ask your prescriber.

Prescriptions whose latest fill runs out `refill_days_before` days from today or ran
out `refill_days_after` days ago, read in one query per site; the rules core says
which kind each gets, if any. A patient's prescriptions of one kind share one message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db import connection

from carebell.core.grouping import Group, PatientItem, group_same_day
from carebell.core.reasons import Reason
from carebell.core.schedule import PrescriptionFacts, in_drug_classes, plan_daily, refill_kind_on
from carebell.core.vocab import DeaSchedule, EntityType, Kind, PrescriptionStatus
from carebell.planning.contacts import as_date
from carebell.planning.decisions import Decision
from carebell.planning.pharmacy import Ids, Only, contacts_of, only_patients
from carebell.planning.subjects import SitePass, Subject, decide, fixed, joined

REFILL_KINDS = (Kind.REFILL_DUE, Kind.REFILL_PAST_DUE, Kind.REFILL_ASK_PRESCRIBER)

# The prescription's latest fill that reached the patient (a fill returned to stock
# never did), due on one of the given dates.
_REFILLS_SQL = """
SELECT rx.id, rx.patient_id, rx.status, rx.refills_remaining, rx.is_maintenance,
       rx.dea_schedule, f.filled_on, f.days_supply, p.first_name, p.last_name
FROM pharmacy_prescription rx
JOIN people_patient p ON p.id = rx.patient_id
JOIN pharmacy_fill f ON f.prescription_id = rx.id AND f.step <> 'returned_to_stock'
WHERE rx.site_id = %s AND rx.status = 'active' AND p.is_active = %s
  AND NOT EXISTS (SELECT 1 FROM pharmacy_fill g WHERE g.prescription_id = rx.id
                  AND g.step <> 'returned_to_stock' AND g.fill_number > f.fill_number)
  AND {due} IN ({dates}){only}
ORDER BY rx.patient_id, rx.id
"""
_DUE = {
    "postgresql": "(f.filled_on + f.days_supply)",
    "sqlite": "date(f.filled_on, '+' || f.days_supply || ' days')",
}

#: A prescription to remind of: its facts, the patient's name, and the rules core's
#: reasons for its kind.
_Found = tuple[PrescriptionFacts, str, tuple[Reason, ...]]


def plan_refills(p: SitePass, only: Only | None = None) -> Iterator[Decision]:
    """Refill due / past due / ask-your-prescriber for prescriptions that run out
    `refill_days_before` days from today or ran out `refill_days_after` days ago;
    a patient's prescriptions of one kind share one message. Given `only`, for those
    patients only."""
    today, rx = p.today, p.rx
    before = today + dt.timedelta(days=rx.refill_days_before)
    dates = _reminder_dates(p, today)
    if not dates:
        return
    items: list[PatientItem] = []
    found: dict[int, _Found] = {}
    for rx_facts, name in _due_on(p, dates, only):
        chosen = refill_kind_on(rx_facts, rx, today)
        if chosen.kind is None:
            yield from _refill_skipped(p, rx_facts, name, chosen.reasons, before)
        elif chosen.kind in p.rules:
            rx_id = rx_facts.prescription_id
            found[rx_id] = (rx_facts, name, chosen.reasons)
            items.append(PatientItem(rx_facts.patient_id, chosen.kind, p.site.id, today, rx_id))
    yield from _decide_grouped(p, items, found, only)


def _decide_grouped(
    p: SitePass, items: list[PatientItem], found: dict[int, _Found], only: Only | None
) -> Iterator[Decision]:
    """One subject per patient and kind, decided under each of the kind's rules: a rule
    timed its own way, or covering some drug classes only, gets subjects of its own."""
    shared: dict[Kind, list[Subject]] = {}
    for kind in dict.fromkeys(i.kind for i in items):
        for rule in p.rules[kind]:
            rp = p.for_rule(rule)
            if rp is p:
                if kind not in shared:
                    shared[kind] = _refill_subjects(p, [i for i in items if i.kind == kind], found)
                subjects = shared[kind]
            else:
                mine = [i for i in items if i.kind == kind and _covers(rp, found[i.entity_id])]
                subjects = _refill_subjects(rp, mine, found)
            yield from decide(rp, rule, kind, subjects, contacts_of(only))


def _refill_subjects(p: SitePass, items: list[PatientItem], found) -> list[Subject]:
    return [_refill_subject(p, group, found) for group in group_same_day(items)]


def _covers(p: SitePass, member: _Found) -> bool:
    facts = member[0]
    return in_drug_classes(p.drugs, facts.maintenance, facts.dea_schedule)


def _reminder_dates(p: SitePass, day: dt.date) -> list[dt.date]:
    """The due dates the batch of `day` reminds of: `refill_days_before` ahead, and
    `refill_days_after` ago, each if the site reminds of it."""
    rx = p.rx
    before = day + dt.timedelta(days=rx.refill_days_before)
    after = day - dt.timedelta(days=rx.refill_days_after)
    return [d for d, on in ((before, rx.refill_when_due), (after, rx.refill_when_past_due)) if on]


def _due_on(p: SitePass, dates: list[dt.date], only: Only | None) -> list[tuple]:
    """The prescriptions due on one of `dates`; given `only`, its patients' prescriptions
    due on any day of its batches, read once, of which this day keeps its own."""
    if only is None:
        return list(_due_prescriptions(p, dates, None))

    def read() -> list[tuple]:
        every = sorted({d for day in only.days for d in _reminder_dates(p, day)})
        return list(_due_prescriptions(p, every, only.patient_ids))

    rows = only.read("refills", read)
    wanted = set(dates)
    return [(facts, name) for facts, name in rows if _due(facts) in wanted]


def _due(facts: PrescriptionFacts) -> dt.date:
    return facts.last_fill_date + dt.timedelta(days=facts.days_supply)


def _due_prescriptions(
    p: SitePass, dates: list[dt.date], patient_ids: Ids
) -> Iterator[tuple[PrescriptionFacts, str]]:
    """The site's active prescriptions (of `patient_ids`, if given) whose latest fill
    runs out on one of `dates`, as (PrescriptionFacts, patient name)."""
    vendor = connection.vendor
    due = _DUE.get(vendor, _DUE["postgresql"])
    params = [d.isoformat() if vendor == "sqlite" else d for d in dates]
    only, only_params = only_patients("rx.patient_id", patient_ids)
    sql = _REFILLS_SQL.format(due=due, dates=",".join(["%s"] * len(dates)), only=only)
    with connection.cursor() as cursor:
        cursor.execute(sql, [p.site.id, True, *params, *only_params])
        rows = cursor.fetchall()
    for (prescription_id, patient_id, status, refills_remaining, maintenance, schedule,
         filled_on, days_supply, first_name, last_name) in rows:  # fmt: skip
        yield PrescriptionFacts(
            prescription_id, patient_id, PrescriptionStatus(status), refills_remaining,
            as_date(filled_on), days_supply, bool(maintenance), DeaSchedule(schedule or ""),
        ), f"{first_name} {last_name}"  # fmt: skip


def _refill_subject(p: SitePass, group: Group, found: dict[int, _Found]) -> Subject:
    members = [found[i.entity_id] for i in group.items]
    ids = [m[0].prescription_id for m in members]
    due = sorted({_due(m[0]) for m in members})
    why = tuple(dict.fromkeys(r for m in members for r in m[2]))
    today = p.today

    def plan(ch, zone):
        return plan_daily(p.policy, ch, today, p.now, recipient_zone=zone)

    occurrence = f"x{joined(ids)}@{','.join(d.isoformat() for d in due)}"
    subject_reasons = (*why, *group.reasons)
    return Subject(
        members[0][0].patient_id, members[0][1], EntityType.PRESCRIPTION, ids, p.midnight(due[0]),
        fixed(occurrence, plan), subject_reasons,
    )  # fmt: skip


def _refill_skipped(p: SitePass, rx_facts, name, reasons, before: dt.date) -> Iterator[Decision]:
    """A prescription that runs out on a reminder day but is filtered out: one skipped
    decision with the reasons, under the rule it would have used."""
    due = _due(rx_facts)
    kind = Kind.REFILL_DUE if due == before else Kind.REFILL_PAST_DUE
    for rule in p.rules.get(kind, [])[:1]:
        yield Decision(
            "skipped", kind=kind.value, channel="", site_id=p.site.id,
            patient_id=rx_facts.patient_id, contact_id=None, contact_point_id=None, to="",
            entity_type=EntityType.PRESCRIPTION, entity_id=rx_facts.prescription_id,
            event_at=p.midnight(due), planned_at=None, reasons=tuple(reasons), rule_id=rule.id,
            entity_name=name,
        )  # fmt: skip
