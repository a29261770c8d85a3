"""Fill messages: ready for pickup, pickup reminders and pickup confirmations.

Also what the other pharmacy kinds share: the rules core's `pharmacy_settings` and
the loading and grouping of fills (reviews follow pickups). Fills are read set-based,
one query per kind; a patient's fills of one site day share one message. Given
`patient_ids`, each kind reads those patients' fills only (a patient's forecast).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Collection, Hashable, Iterator
from typing import TypeVar

from django.db import connection
from django.db.models import Q

from carebell.core.grouping import Group, PatientItem, group_same_day
from carebell.core.schedule import (
    FillFacts,
    PharmacySettings,
    in_drug_classes,
    plan_pickup_confirmation,
    plan_pickup_reminders,
    plan_ready_notice,
    ready_at,
)
from carebell.core.timing import Plan
from carebell.core.vocab import (
    Category,
    DeaSchedule,
    EntityType,
    FillStep,
    Kind,
    OutboxStatus,
    PatientEvent,
    ReadyTrigger,
)
from carebell.messaging.models import OutboxMessage, OutboxSubject
from carebell.planning.contacts import as_datetime, load_contacts
from carebell.planning.subjects import (
    EVENT_LOOKBACK,
    PlanFor,
    SitePass,
    Subject,
    chunks,
    fixed,
    joined,
)
from carebell.sites.models import Site
from carebell.sql import utc_params

#: Which patients a kind plans for: None for all of the site's, else these only.
Ids = Collection[int] | None
T = TypeVar("T")

_CANCELLED = OutboxStatus.CANCELLED.value
_STEP_COLUMNS = ", ".join(f"f.{s.value}_at" for s in FillStep)

_FILLS_SQL = f"""
SELECT f.id, f.prescription_id, rx.patient_id, f.step, {_STEP_COLUMNS},
       p.first_name, p.last_name, rx.is_maintenance, rx.dea_schedule
FROM pharmacy_fill f
JOIN pharmacy_prescription rx ON rx.id = f.prescription_id
JOIN people_patient p ON p.id = rx.patient_id
WHERE rx.site_id = %s AND p.is_active = %s AND f.step IN ({{steps}}) AND ({{recent}}){{only}}
ORDER BY rx.patient_id, f.id
"""


def pharmacy_settings(site: Site, ask_prescriber: bool = False) -> PharmacySettings:
    """The rules core's pharmacy settings from the site's delivery settings row."""
    row = site.delivery
    return PharmacySettings(
        ready_trigger=ReadyTrigger(row.ready_trigger),
        pickup_reminder_days=tuple(row.pickup_reminder_days or ()),
        refill_when_due=row.refill_when_due,
        refill_when_past_due=row.refill_when_past_due,
        refill_days_before=row.refill_days_before,
        refill_days_after=row.refill_days_after,
        refill_non_maintenance=row.refill_non_maintenance,
        refill_controlled=row.refill_controlled,
        refill_c2=row.refill_c2,
        refill_ask_prescriber=ask_prescriber,
        review_delay=dt.timedelta(hours=row.review_delay_hours),
        review_resend_after_days=row.review_resend_days,
        review_max_sends=row.review_max_sends,
        welcome_on=PatientEvent.CONSENTED if row.welcome_on_consent else PatientEvent.ADDED,
    )


@dataclasses.dataclass(slots=True)
class Only:
    """Some patients' daily batches on several site-local days (a forecast), instead
    of the whole site's on one day. Each kind reads these patients' rows once, on the
    first of `days` (batches run in day order), widely enough for every day; each
    day's batch keeps of them exactly what its own read would have found."""

    patient_ids: list[int]
    days: list[dt.date]
    _read: dict = dataclasses.field(default_factory=dict)

    def read(self, name: Hashable, load: Callable[[], T]) -> T:
        """`load()`'s rows, read the first time `name` is asked for."""
        if name not in self._read:
            self._read[name] = load()
        return self._read[name]

    def contacts(self, ids: Collection[int], category: Category) -> dict:
        """`load_contacts` for `subjects.decide`: the patients' contacts with their
        preference for `category`, read once (nothing changes between the days)."""
        mine = set(self.patient_ids)
        if not set(ids) <= mine:
            return load_contacts(ids, category)
        return self.read(("contacts", category), lambda: load_contacts(mine, category))


def contacts_of(only: Only | None) -> Callable[..., dict]:
    """How `subjects.decide` reads the contacts of the patients of a pass."""
    return load_contacts if only is None else only.contacts


def only_patients(column: str, ids: Ids) -> tuple[str, list[int]]:
    """The SQL condition, and its parameters, that keeps the rows whose `column` is one
    of the patients `ids`; nothing to add when `ids` is None (the whole site)."""
    if ids is None:
        return "", []
    chosen = sorted(set(ids))
    if not chosen:
        return " AND 1 = 0", []
    return f" AND {column} IN ({','.join(['%s'] * len(chosen))})", chosen


# Subjects -----------------------------------------------------------------------------------


def ready_subjects(p: SitePass, patient_ids: Ids = None) -> Iterator[Subject]:
    """Fills that became ready in the last EVENT_LOOKBACK and were not announced yet."""

    def plan(ch, zone, fill: FillFacts) -> Plan:
        return plan_ready_notice(p.policy, ch, fill, p.rx, p.now, zone)

    rows = _ready_fills(p, p.now - EVENT_LOOKBACK, patient_ids)
    yield from _news_subjects(p, Kind.RX_READY, rows, plan)


def confirmation_subjects(p: SitePass, patient_ids: Ids = None) -> Iterator[Subject]:
    """Fills picked up in the last EVENT_LOOKBACK whose pickup was not confirmed yet."""

    def plan(ch, zone, fill: FillFacts) -> Plan:
        return plan_pickup_confirmation(p.policy, ch, fill, p.now, zone)

    rows = picked_up_fills(p, p.now - EVENT_LOOKBACK, patient_ids)
    yield from _news_subjects(p, Kind.RX_PICKUP_CONFIRMATION, rows, plan)


def _news_subjects(
    p: SitePass, kind: Kind, rows: list[FillRow], plan: Callable[..., Plan]
) -> Iterator[Subject]:
    """One message of `kind` per patient and site day for the fills not yet announced,
    timed by `plan(channel, zone, fill)` for the group's latest fill."""
    done = _announced(kind, [r.facts.fill_id for r in rows])
    rows = [r for r in rows if r.facts.fill_id not in done]
    for group, members in fill_groups(p, kind, rows, lambda r: p.policy.local_date(r.at)):
        timed = functools.partial(plan, fill=members[-1].facts)
        ids = joined(m.facts.fill_id for m in members)
        yield fill_subject(group, members, fixed(f"f{ids}", timed))


def reminder_subjects(p: SitePass, only: Only | None = None) -> Iterator[Subject]:
    """Fills not picked up whose ready day plus one of the reminder day counts is today;
    a patient's fills reminded the same day share one message."""
    days = sorted(p.rx.pickup_reminder_days)
    if not days:
        return
    today = p.today
    since = p.now - dt.timedelta(days=days[-1] + 2)
    if only is None:
        rows = _ready_fills(p, since, None)
    else:  # read on the first day, since its earliest `since`
        rows = only.read("ready", lambda: _ready_fills(p, since, only.patient_ids))
        rows = [r for r in rows if r.at >= since]
    due = {r.facts.fill_id: (today - p.policy.local_date(r.at)).days for r in rows}
    rows = [r for r in rows if due[r.facts.fill_id] in days]
    for group, members in fill_groups(p, Kind.RX_PICKUP_REMINDER, rows, lambda r: today):
        first = members[0].facts
        index = days.index(due[first.fill_id])

        def plan(ch, zone, f=first, i=index):
            return plan_pickup_reminders(p.policy, ch, f, p.rx, p.now, zone)[i]

        ids = joined(m.facts.fill_id for m in members)
        yield fill_subject(group, members, fixed(f"f{ids}@{today.isoformat()}", plan))


# Loading and grouping fills -----------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class FillRow:
    facts: FillFacts
    name: str
    at: dt.datetime  # when the step that matters (ready, pickup) was reached
    drug: tuple[bool, DeaSchedule]  # maintenance, controlled class: for a rule's filter


def _fills(
    site_id: int, steps: list[FillStep], since: dt.datetime, columns: list[FillStep], ids: Ids
):
    """Fills of the site's active patients (or of the patients `ids` only) now at one
    of `steps` and that reached one of the `columns` steps since `since`, as
    (FillFacts, patient name, drug)."""
    only, only_params = only_patients("rx.patient_id", ids)
    sql = _FILLS_SQL.format(
        steps=",".join(["%s"] * len(steps)),
        recent=" OR ".join(f"f.{c.value}_at >= %s" for c in columns),
        only=only,
    )
    since_params = [since] * len(columns)
    params = utc_params([site_id, True, *(s.value for s in steps), *since_params, *only_params])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for row in rows:
        times = {step: as_datetime(v) for step, v in zip(FillStep, row[4:11], strict=True)}
        steps_at = {step: at for step, at in times.items() if at is not None}
        facts = FillFacts(row[0], row[1], row[2], FillStep(row[3]), steps_at)
        yield facts, f"{row[11]} {row[12]}", (bool(row[13]), DeaSchedule(row[14] or ""))


def picked_up_fills(p: SitePass, since: dt.datetime, patient_ids: Ids = None) -> list[FillRow]:
    """The site's fills (of `patient_ids` only, if given) picked up since `since`, each
    at its pickup time."""
    picked = [FillStep.PICKED_UP]
    return [
        FillRow(f, n, f.steps_at[FillStep.PICKED_UP], drug)
        for f, n, drug in _fills(p.site.id, picked, since, picked, patient_ids)
    ]


def _ready_steps(trigger: ReadyTrigger) -> list[FillStep]:
    first = FillStep(trigger.value).order
    return [s for s in FillStep if first <= s.order <= FillStep.READY.order]


def _ready_fills(p: SitePass, since: dt.datetime, patient_ids: Ids) -> list[FillRow]:
    """Fills past the site's ready trigger, not picked up or returned, ready since `since`."""
    steps = _ready_steps(p.rx.ready_trigger)
    out = []
    for facts, name, drug in _fills(p.site.id, steps, since, steps, patient_ids):
        reached = ready_at(facts, p.rx.ready_trigger)
        if reached is not None and reached >= since:
            out.append(FillRow(facts, name, reached, drug))
    return out


def _announced(kind: Kind, fill_ids: list[int]) -> set[int]:
    """Fills already the subject of a message of `kind` that still holds its occurrence:
    not cancelled, and not closed by a replan that gave its key back (a ready notice
    blocked when consent was withdrawn is announced again once it is granted)."""
    found: set[int] = set()
    for chunk in chunks(sorted(fill_ids)):
        own = OutboxMessage.objects.filter(
            kind=kind, entity_type=EntityType.FILL, entity_id__in=chunk
        ).exclude(Q(status=_CANCELLED) | Q(dedupe_key__isnull=True))
        found.update(own.values_list("entity_id", flat=True))
        listed = OutboxSubject.objects.filter(
            entity_type=EntityType.FILL, entity_id__in=chunk, message__kind=kind
        ).exclude(Q(message__status=_CANCELLED) | Q(message__dedupe_key__isnull=True))
        found.update(listed.values_list("entity_id", flat=True))
    return found


def fill_groups(p: SitePass, kind: Kind, rows: list[FillRow], day_of) -> Iterator[tuple]:
    """A patient's fills of one site day as one group: (group, its rows by time). Only
    the fills of the drug classes the pass's rule covers."""
    if p.drugs:
        rows = [r for r in rows if in_drug_classes(p.drugs, *r.drug)]
    by_id = {r.facts.fill_id: r for r in rows}
    items = [
        PatientItem(r.facts.patient_id, kind, p.site.id, day_of(r), r.facts.fill_id) for r in rows
    ]
    for group in group_same_day(items):
        members = sorted((by_id[i.entity_id] for i in group.items), key=lambda r: r.at)
        yield group, members


def fill_subject(group: Group, members: list[FillRow], plan_for: PlanFor) -> Subject:
    first = members[0].facts
    return Subject(
        first.patient_id, members[0].name, EntityType.FILL, [m.facts.fill_id for m in members],
        members[-1].at, plan_for, group.reasons,
    )  # fmt: skip
