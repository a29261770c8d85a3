"""Pharmacy and greeting messages (SPEC §5.4–§5.5).

Two entry points, both called by the runner: `plan_site_events` on every pass, for
what should not wait a day (ready for pickup, pickup confirmation, welcome), and
`plan_site_daily` once a day after the site's daily process start (`is_due`,
`mark_done`) for pickup reminders, refill reminders, review requests and birthdays.

Rows are read set-based, a few queries per site and kind, contacts a chunk of
patients at a time; every timing and eligibility question goes to `carebell.core`.
Each decision's `dedupe_key` names rule, kind, subject, occurrence and contact point,
so planning the same thing again stores nothing new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q

from carebell.core.caps import CapAction, SmsRecord, check_sms_cap
from carebell.core.channels import ALL_CHANNELS, Delivery, plan_recipients
from carebell.core.grouping import Group, PatientItem, group_same_day
from carebell.core.reasons import Reason
from carebell.core.schedule import (
    FillFacts,
    PharmacySettings,
    PrescriptionFacts,
    plan_birthday,
    plan_daily,
    plan_event,
    plan_pickup_confirmation,
    plan_pickup_reminders,
    plan_ready_notice,
    plan_review_request,
    plan_welcome,
    ready_at,
    refill_kind_on,
)
from carebell.core.timing import Plan
from carebell.core.vocab import (
    CAPPED_KINDS,
    Channel,
    DeaSchedule,
    FillStep,
    Kind,
    OutboxStatus,
    PatientEvent,
    PrescriptionStatus,
    ReadyTrigger,
)
from carebell.core.windows import DeliveryPolicy, DeliverySettings, zone_for
from carebell.messaging.models import (
    PENDING,
    AutomatedMessage,
    MessageEvent,
    OutboxMessage,
    OutboxSubject,
    PlannerLease,
)
from carebell.messaging.planning.contacts import (
    LoadedContact,
    as_date,
    as_datetime,
    load_contacts,
)
from carebell.messaging.planning.decisions import Decision, dedupe_key
from carebell.people.models import Patient
from carebell.sites.models import Site

EVENT_KINDS = frozenset({Kind.RX_READY, Kind.RX_PICKUP_CONFIRMATION, Kind.WELCOME})
DAILY_KINDS = frozenset(
    {
        Kind.RX_PICKUP_REMINDER,
        Kind.REFILL_DUE,
        Kind.REFILL_PAST_DUE,
        Kind.REFILL_ASK_PRESCRIBER,
        Kind.REVIEW_REQUEST,
        Kind.BIRTHDAY,
    }
)
REFILL_KINDS = (Kind.REFILL_DUE, Kind.REFILL_PAST_DUE, Kind.REFILL_ASK_PRESCRIBER)
#: How long an event stays news: a fill ready, a pickup or a new patient older than
#: this is not announced, so enabling a rule does not message the whole history.
EVENT_LOOKBACK = dt.timedelta(days=2)
#: The note on a MessageEvent that records a patient opening a review link.
REVIEW_LINK_OPENED = "review_link_opened"
CHUNK = 2000
_DAY = dt.timedelta(days=1)
_CANCELLED = OutboxStatus.CANCELLED.value
# Rows that no longer count toward the SMS caps: they will never reach the patient.
_NOT_SENT = [OutboxStatus.CANCELLED.value, OutboxStatus.BLOCKED.value, OutboxStatus.FAILED.value]
_STEP_COLUMNS = ", ".join(f"f.{s.value}_at" for s in FillStep)

_FILLS_SQL = f"""
SELECT f.id, f.prescription_id, rx.patient_id, f.step, {_STEP_COLUMNS},
       p.first_name, p.last_name
FROM pharmacy_fill f
JOIN pharmacy_prescription rx ON rx.id = f.prescription_id
JOIN people_patient p ON p.id = rx.patient_id
WHERE rx.site_id = %s AND p.is_active = %s AND f.step IN ({{steps}}) AND ({{recent}})
ORDER BY rx.patient_id, f.id
"""

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
  AND {due} IN ({dates})
ORDER BY rx.patient_id, rx.id
"""
_DUE = {
    "postgresql": "(f.filled_on + f.days_supply)",
    "sqlite": "date(f.filled_on, '+' || f.days_supply || ' days')",
}

PlanFor = Callable[[Delivery, ZoneInfo | None], "tuple[Plan, str] | None"]


@dataclasses.dataclass(slots=True)
class Subject:
    """What one message is about, before its recipients are known: a patient, the
    entities, and how to plan it for one delivery — a Plan and the occurrence part of
    the dedupe key, or None when nothing is due yet."""

    patient_id: int
    name: str
    entity_type: str
    entity_ids: list[int]
    event_at: dt.datetime | None
    plan_for: PlanFor
    reasons: tuple[Reason, ...] = ()
    #: Never sent at or after this; pickup messages stop on the fill's state instead.
    not_after: dt.datetime | None = None


@dataclasses.dataclass(slots=True)
class _Pass:
    """One site's planning pass: what every kind needs to know."""

    site: Site
    policy: DeliveryPolicy
    now: dt.datetime
    rules: dict[Kind, list[AutomatedMessage]]
    rx: PharmacySettings
    caps: SmsCaps

    @property
    def today(self) -> dt.date:
        return self.policy.local_date(self.now)

    def midnight(self, day: dt.date) -> dt.datetime:
        return self.policy.local_instant(day, dt.time(0))


# The daily batch's bookkeeping ----------------------------------------------------------


def _lease_name(site: Site) -> str:
    return f"daily:{site.id}"


def is_due(site: Site, now: dt.datetime, policy: DeliveryPolicy) -> bool:
    """True when the site's daily batch has not run for its current local date and the
    local time is past the site's daily process start."""
    today = policy.local_date(now)
    if now < policy.local_instant(today, policy.settings.daily_process_start):
        return False
    rows = PlannerLease.objects.filter(name=_lease_name(site))
    last = rows.values_list("last_daily_run", flat=True).first() or {}
    return last.get("date", "") < today.isoformat()


def mark_done(site: Site, now: dt.datetime, policy: DeliveryPolicy) -> None:
    """Record that the daily batch ran for the site's local date of `now`."""
    today = policy.local_date(now).isoformat()
    with transaction.atomic():
        PlannerLease.objects.update_or_create(
            name=_lease_name(site),
            defaults={"holder": "daily", "expires_at": now, "last_daily_run": {"date": today}},
        )


# Entry points -------------------------------------------------------------------------------


def plan_site_events(
    site: Site,
    rules: list[AutomatedMessage],
    policy: DeliveryPolicy,
    now: dt.datetime,
    caps: SmsCaps | None = None,
) -> Iterator[Decision]:
    """Ready notices, pickup confirmations and welcomes for events of the last
    EVENT_LOOKBACK not yet announced; called on every planner pass. Pass the same
    `caps` to both entry points of one pass so their texts count against each other."""
    p = _new_pass(site, rules, policy, now, EVENT_KINDS, caps)
    if p is None:
        return
    for rule in p.rules.get(Kind.RX_READY, []):
        yield from _decide(p, rule, Kind.RX_READY, _ready_subjects(p))
    for rule in p.rules.get(Kind.RX_PICKUP_CONFIRMATION, []):
        yield from _decide(p, rule, Kind.RX_PICKUP_CONFIRMATION, _confirmation_subjects(p))
    for rule in p.rules.get(Kind.WELCOME, []):
        yield from _decide(p, rule, Kind.WELCOME, _welcome_subjects(p))


def plan_site_daily(
    site: Site,
    rules: list[AutomatedMessage],
    policy: DeliveryPolicy,
    now: dt.datetime,
    caps: SmsCaps | None = None,
) -> Iterator[Decision]:
    """The daily batch for the site's local date of `now`: pickup reminders, refill
    reminders, review requests and birthdays."""
    p = _new_pass(site, rules, policy, now, DAILY_KINDS, caps)
    if p is None:
        return
    for rule in p.rules.get(Kind.RX_PICKUP_REMINDER, []):
        yield from _decide(p, rule, Kind.RX_PICKUP_REMINDER, _reminder_subjects(p))
    if any(k in p.rules for k in REFILL_KINDS):
        yield from _plan_refills(p)
    for rule in p.rules.get(Kind.REVIEW_REQUEST, []):
        yield from _plan_reviews(p, rule)
    for rule in p.rules.get(Kind.BIRTHDAY, []):
        yield from _decide(p, rule, Kind.BIRTHDAY, _birthday_subjects(p))


def _new_pass(site, rules, policy, now, kinds: frozenset[Kind], caps) -> _Pass | None:
    by_kind: dict[Kind, list[AutomatedMessage]] = defaultdict(list)
    for rule in rules:
        if rule.enabled and rule.kind in kinds:
            by_kind[Kind(rule.kind)].append(rule)
    if not by_kind:
        return None
    rx = pharmacy_settings(site, bool(by_kind.get(Kind.REFILL_ASK_PRESCRIBER)))
    return _Pass(site, policy, now, dict(by_kind), rx, caps or SmsCaps(site.id, now))


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


# From subjects to decisions -----------------------------------------------------------------


def _decide(p: _Pass, rule, kind: Kind, subjects: Iterable[Subject]) -> Iterator[Decision]:
    """Every decision for these subjects: recipients per patient, a plan per delivery,
    the SMS caps; contacts loaded CHUNK patients at a time."""
    settings = _rule_settings(p.policy.settings, rule, kind)
    for chunk in _chunks(list(subjects)):
        ids = {s.patient_id for s in chunk}
        contacts = load_contacts(ids, kind.category)
        if kind in CAPPED_KINDS:
            p.caps.load(ids)
        for subject in chunk:
            found = contacts.get(subject.patient_id, [])
            yield from _for_subject(p, rule, kind, settings, subject, found)


def _rule_settings(settings: DeliverySettings, rule, kind: Kind) -> DeliverySettings:
    # A rule's own channel list narrows the site's channels for the kind.
    if not rule.channels:
        return settings
    site_channels = settings.kind_channels.get(kind, ALL_CHANNELS)
    allowed = site_channels & frozenset(Channel(c) for c in rule.channels)
    return dataclasses.replace(settings, kind_channels={**settings.kind_channels, kind: allowed})


def _for_subject(p: _Pass, rule, kind, settings, subject: Subject, contacts: list[LoadedContact]):
    by_id = {c.facts.contact_id: c for c in contacts}
    ids = subject.entity_ids
    base = {
        "kind": kind.value, "site_id": p.site.id, "patient_id": subject.patient_id,
        "entity_type": subject.entity_type, "entity_id": ids[0], "event_at": subject.event_at,
        "not_after": subject.not_after, "rule_id": rule.id, "entity_name": subject.name,
    }  # fmt: skip
    for choice in plan_recipients([c.facts for c in contacts], kind, settings, p.today):
        contact = by_id[choice.contact_id]
        if not choice.deliveries:
            yield Decision(
                "skipped", channel="", contact_id=choice.contact_id, contact_point_id=None, to="",
                planned_at=None, reasons=(*subject.reasons, *choice.reasons),
                entity_ids=list(ids) if len(ids) > 1 else [], **base,
            )  # fmt: skip
        zone = zone_for(contact.facts.zone) if contact.facts.zone else None
        for delivery in choice.deliveries:
            found = subject.plan_for(delivery, zone)
            if found is None:
                continue
            plan, occurrence = found
            decision = Decision(
                "planned" if plan.planned else "skipped", channel=delivery.channel.value,
                contact_id=choice.contact_id,
                contact_point_id=contact.point_ids.get(delivery.address), to=delivery.address,
                planned_at=plan.at, reasons=(*subject.reasons, *choice.reasons, *plan.reasons),
                language=contact.language, entity_ids=list(ids) if len(ids) > 1 else [],
                dedupe_key=dedupe_key(
                    f"r{rule.id}:{kind.value}:{occurrence}:{delivery.channel.value}:"
                    f"{delivery.address}"
                ),
                **base,
            )  # fmt: skip
            if decision.planned:
                p.caps.apply(decision, zone, p.policy, p.now)
            yield decision


def _fixed(occurrence: str, plan: Callable[[Channel, ZoneInfo | None], Plan]) -> PlanFor:
    """A PlanFor whose occurrence is the same for every delivery."""
    return lambda delivery, zone: (plan(delivery.channel, zone), occurrence)


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _joined(ids: Iterable[object]) -> str:
    return ".".join(str(i) for i in ids)


# Fills: ready, pickup reminders, pickup confirmations -----------------------------------------


@dataclasses.dataclass(slots=True)
class _FillRow:
    facts: FillFacts
    name: str
    at: dt.datetime  # when the step that matters (ready, pickup) was reached


def _fills(site_id: int, steps: list[FillStep], since: dt.datetime, columns: list[FillStep]):
    """Fills of the site's active patients now at one of `steps` and that reached one of
    the `columns` steps since `since`, as (FillFacts, patient name)."""
    sql = _FILLS_SQL.format(
        steps=",".join(["%s"] * len(steps)),
        recent=" OR ".join(f"f.{c.value}_at >= %s" for c in columns),
    )
    params = [site_id, True, *(s.value for s in steps), *([since] * len(columns))]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for row in rows:
        times = {step: as_datetime(v) for step, v in zip(FillStep, row[4:11], strict=True)}
        steps_at = {step: at for step, at in times.items() if at is not None}
        yield FillFacts(row[0], row[1], row[2], FillStep(row[3]), steps_at), f"{row[11]} {row[12]}"


def _ready_steps(trigger: ReadyTrigger) -> list[FillStep]:
    first = FillStep(trigger.value).order
    return [s for s in FillStep if first <= s.order <= FillStep.READY.order]


def _ready_fills(p: _Pass, since: dt.datetime) -> list[_FillRow]:
    """Fills past the site's ready trigger, not picked up or returned, ready since `since`."""
    steps = _ready_steps(p.rx.ready_trigger)
    out = []
    for facts, name in _fills(p.site.id, steps, since, steps):
        reached = ready_at(facts, p.rx.ready_trigger)
        if reached is not None and reached >= since:
            out.append(_FillRow(facts, name, reached))
    return out


def _announced(kind: Kind, fill_ids: list[int]) -> set[int]:
    """Fills already the subject of a (not cancelled) message of `kind`."""
    found: set[int] = set()
    for chunk in _chunks(sorted(fill_ids)):
        own = OutboxMessage.objects.filter(kind=kind, entity_type="fill", entity_id__in=chunk)
        found.update(own.exclude(status=_CANCELLED).values_list("entity_id", flat=True))
        listed = OutboxSubject.objects.filter(
            entity_type="fill", entity_id__in=chunk, message__kind=kind
        ).exclude(message__status=_CANCELLED)
        found.update(listed.values_list("entity_id", flat=True))
    return found


def _fill_groups(p: _Pass, kind: Kind, rows: list[_FillRow], day_of) -> Iterator[tuple]:
    """A patient's fills of one site day as one group: (group, its rows by time)."""
    by_id = {r.facts.fill_id: r for r in rows}
    items = [
        PatientItem(r.facts.patient_id, kind, p.site.id, day_of(r), r.facts.fill_id) for r in rows
    ]
    for group in group_same_day(items):
        members = sorted((by_id[i.entity_id] for i in group.items), key=lambda r: r.at)
        yield group, members


def _fill_subject(group: Group, members: list[_FillRow], plan_for: PlanFor) -> Subject:
    first = members[0].facts
    return Subject(
        first.patient_id, members[0].name, "fill", [m.facts.fill_id for m in members],
        members[-1].at, plan_for, group.reasons,
    )  # fmt: skip


def _ready_subjects(p: _Pass) -> Iterator[Subject]:
    rows = _ready_fills(p, p.now - EVENT_LOOKBACK)
    done = _announced(Kind.RX_READY, [r.facts.fill_id for r in rows])
    rows = [r for r in rows if r.facts.fill_id not in done]
    for group, members in _fill_groups(p, Kind.RX_READY, rows, lambda r: p.policy.local_date(r.at)):
        last = members[-1].facts
        plan = lambda ch, zone, f=last: plan_ready_notice(p.policy, ch, f, p.rx, p.now, zone)  # noqa: E731
        ids = _joined(m.facts.fill_id for m in members)
        yield _fill_subject(group, members, _fixed(f"f{ids}", plan))


def _confirmation_subjects(p: _Pass) -> Iterator[Subject]:
    since = p.now - EVENT_LOOKBACK
    picked = [FillStep.PICKED_UP]
    rows = [
        _FillRow(f, n, f.steps_at[FillStep.PICKED_UP])
        for f, n in _fills(p.site.id, picked, since, picked)
    ]
    done = _announced(Kind.RX_PICKUP_CONFIRMATION, [r.facts.fill_id for r in rows])
    rows = [r for r in rows if r.facts.fill_id not in done]
    kind = Kind.RX_PICKUP_CONFIRMATION
    for group, members in _fill_groups(p, kind, rows, lambda r: p.policy.local_date(r.at)):
        last = members[-1].facts
        plan = lambda ch, zone, f=last: plan_pickup_confirmation(p.policy, ch, f, p.now, zone)  # noqa: E731
        ids = _joined(m.facts.fill_id for m in members)
        yield _fill_subject(group, members, _fixed(f"f{ids}", plan))


def _reminder_subjects(p: _Pass) -> Iterator[Subject]:
    """Fills not picked up whose ready day plus one of the reminder day counts is today;
    a patient's fills reminded the same day share one message."""
    days = sorted(p.rx.pickup_reminder_days)
    if not days:
        return
    today = p.today
    rows = _ready_fills(p, p.now - dt.timedelta(days=days[-1] + 2))
    due = {r.facts.fill_id: (today - p.policy.local_date(r.at)).days for r in rows}
    rows = [r for r in rows if due[r.facts.fill_id] in days]
    for group, members in _fill_groups(p, Kind.RX_PICKUP_REMINDER, rows, lambda r: today):
        first = members[0].facts
        index = days.index(due[first.fill_id])

        def plan(ch, zone, f=first, i=index):
            return plan_pickup_reminders(p.policy, ch, f, p.rx, p.now, zone)[i]

        ids = _joined(m.facts.fill_id for m in members)
        yield _fill_subject(group, members, _fixed(f"f{ids}@{today.isoformat()}", plan))


# Refill reminders ------------------------------------------------------------------------------


def _refill_rows(p: _Pass, dates: list[dt.date]) -> list[tuple]:
    """The site's active prescriptions whose latest fill runs out on one of `dates`."""
    vendor = connection.vendor
    due = _DUE.get(vendor, _DUE["postgresql"])
    params = [d.isoformat() if vendor == "sqlite" else d for d in dates]
    sql = _REFILLS_SQL.format(due=due, dates=",".join(["%s"] * len(dates)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [p.site.id, True, *params])
        return cursor.fetchall()


def _plan_refills(p: _Pass) -> Iterator[Decision]:
    """Refill due / past due / ask-your-prescriber for prescriptions that run out
    `refill_days_before` days from today or ran out `refill_days_after` days ago;
    a patient's prescriptions of one kind share one message."""
    today, rx = p.today, p.rx
    before = today + dt.timedelta(days=rx.refill_days_before)
    after = today - dt.timedelta(days=rx.refill_days_after)
    dates = [d for d, on in ((before, rx.refill_when_due), (after, rx.refill_when_past_due)) if on]
    if not dates:
        return
    items: list[PatientItem] = []
    facts: dict[int, tuple[PrescriptionFacts, str, tuple[Reason, ...]]] = {}
    for row in _refill_rows(p, dates):
        rx_facts = PrescriptionFacts(
            row[0], row[1], PrescriptionStatus(row[2]), row[3], as_date(row[6]), row[7],
            bool(row[4]), DeaSchedule(row[5] or ""),
        )  # fmt: skip
        found = refill_kind_on(rx_facts, rx, today)
        if found.kind is None:
            yield from _refill_skipped(p, rx_facts, f"{row[8]} {row[9]}", found.reasons, before)
            continue
        if found.kind in p.rules:
            facts[row[0]] = (rx_facts, f"{row[8]} {row[9]}", found.reasons)
            items.append(PatientItem(row[1], found.kind, p.site.id, today, row[0]))
    by_kind: dict[Kind, list[Subject]] = defaultdict(list)
    for group in group_same_day(items):
        by_kind[group.items[0].kind].append(_refill_subject(p, group, facts))
    for kind, subjects in by_kind.items():
        for rule in p.rules[kind]:
            yield from _decide(p, rule, kind, subjects)


def _refill_subject(p: _Pass, group: Group, facts: dict) -> Subject:
    members = [facts[i.entity_id] for i in group.items]
    ids = [m[0].prescription_id for m in members]
    due = sorted({m[0].last_fill_date + dt.timedelta(days=m[0].days_supply) for m in members})
    why = tuple(dict.fromkeys(r for m in members for r in m[2]))
    today = p.today

    def plan(ch, zone):
        return plan_daily(p.policy, ch, today, p.now, recipient_zone=zone)

    occurrence = f"x{_joined(ids)}@{','.join(d.isoformat() for d in due)}"
    subject_reasons = (*why, *group.reasons)
    return Subject(
        members[0][0].patient_id, members[0][1], "prescription", ids, p.midnight(due[0]),
        _fixed(occurrence, plan), subject_reasons,
    )  # fmt: skip


def _refill_skipped(p: _Pass, rx_facts, name, reasons, before: dt.date) -> Iterator[Decision]:
    """A prescription that runs out on a reminder day but is filtered out: one skipped
    decision with the reasons, under the rule it would have used."""
    due = rx_facts.last_fill_date + dt.timedelta(days=rx_facts.days_supply)
    kind = Kind.REFILL_DUE if due == before else Kind.REFILL_PAST_DUE
    for rule in p.rules.get(kind, [])[:1]:
        yield Decision(
            "skipped", kind=kind.value, channel="", site_id=p.site.id,
            patient_id=rx_facts.patient_id, contact_id=None, contact_point_id=None, to="",
            entity_type="prescription", entity_id=rx_facts.prescription_id,
            event_at=p.midnight(due), planned_at=None, reasons=tuple(reasons), rule_id=rule.id,
            entity_name=name,
        )  # fmt: skip


# Review requests ----------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Sent:
    message_id: int
    status: str
    at: dt.datetime


def _plan_reviews(p: _Pass, rule) -> Iterator[Decision]:
    """Review requests for the patients' pickups of one day: `review_delay` after the
    pickup, resent every `review_resend_after_days` while the link stays unopened, up to
    `review_max_sends`; each send n is its own occurrence."""
    rx = p.rx
    span = rx.review_delay + dt.timedelta(days=rx.review_resend_after_days * rx.review_max_sends)
    since = p.now - span - 2 * _DAY
    picked = [FillStep.PICKED_UP]
    rows = [
        _FillRow(f, n, f.steps_at[FillStep.PICKED_UP])
        for f, n in _fills(p.site.id, picked, since, picked)
    ]
    day_of = lambda r: p.policy.local_date(r.at)  # noqa: E731
    # Group first, then chunk the groups: a patient's pickups never straddle two chunks.
    groups = list(_fill_groups(p, Kind.REVIEW_REQUEST, rows, day_of))
    subjects = []
    for chunk in _chunks(groups):
        ids = {members[0].facts.patient_id for _, members in chunk}
        history, opened = _review_history(p, rule, ids, since)
        for group, members in chunk:
            base = f"p{members[0].facts.patient_id}@{day_of(members[0]).isoformat()}"
            plan_for = _review_plan(p, rule, base, members[-1].at, history, opened)
            subjects.append(_fill_subject(group, members, plan_for))
    yield from _decide(p, rule, Kind.REVIEW_REQUEST, subjects)


def _review_key(rule, occurrence: str, delivery: Delivery) -> str:
    kind = Kind.REVIEW_REQUEST.value
    return dedupe_key(f"r{rule.id}:{kind}:{occurrence}:{delivery.channel.value}:{delivery.address}")


def _review_plan(p: _Pass, rule, base: str, picked_up_at, history, opened) -> PlanFor:
    limit = max(p.rx.review_max_sends, 1)

    def plan_for(delivery: Delivery, zone):
        keys = [_review_key(rule, f"{base}#{n}", delivery) for n in range(1, limit + 1)]
        sent = [history[k] for k in keys if k in history]
        if sent and sent[-1].status in PENDING:
            return None  # already planned; nothing new until it goes
        was_opened = _opened_for(base, opened) or any(k in opened for k in keys)
        plan = plan_review_request(
            p.policy, delivery.channel, picked_up_at, [s.at for s in sent], was_opened, p.rx,
            p.now, zone,
        )  # fmt: skip
        if plan.planned and p.policy.local_date(plan.at) > p.today:
            return None  # not due yet: a later daily batch plans it
        return plan, f"{base}#{len(sent) + 1}"

    return plan_for


def _opened_for(base: str, opened: set[str]) -> bool:
    return any(f":{base}#" in key for key in opened)


def _review_history(p: _Pass, rule, patient_ids: set[int], since: dt.datetime):
    """This rule's review messages since `since` to these patients (by dedupe key) and
    the keys of those whose link was opened."""
    rows = OutboxMessage.objects.filter(
        site_id=p.site.id, kind=Kind.REVIEW_REQUEST.value, rule_id=rule.id,
        patient_id__in=sorted(patient_ids), planned_at__gte=since,
    ).values_list("id", "dedupe_key", "status", "sent_at", "planned_at")  # fmt: skip
    history = {key: _Sent(i, status, sent or planned) for i, key, status, sent, planned in rows}
    by_id = {s.message_id: key for key, s in history.items()}
    opened_ids = MessageEvent.objects.filter(
        message_id__in=list(by_id), note=REVIEW_LINK_OPENED
    ).values_list("message_id", flat=True)
    return history, {by_id[i] for i in opened_ids}


# Greetings ----------------------------------------------------------------------------------------


def _birthday_subjects(p: _Pass) -> Iterator[Subject]:
    """Active patients whose birthday is today (29 February on 28 February in a common
    year, see schedule.birthday_in)."""
    today = p.today
    on = Q(birth_date__month=today.month, birth_date__day=today.day)
    if (today.month, today.day) == (2, 28) and not _is_leap(today.year):
        on |= Q(birth_date__month=2, birth_date__day=29)
    rows = Patient.objects.filter(on, site_id=p.site.id, is_active=True).order_by("id")
    midnight = p.midnight(today)
    for pid, first, last, born in rows.values_list("id", "first_name", "last_name", "birth_date"):

        def plan(ch, zone, born=born):
            return plan_birthday(p.policy, ch, born, today, p.now, zone)

        occurrence = f"p{pid}@{today.year}"
        yield Subject(
            pid,
            f"{first} {last}",
            "patient",
            [pid],
            midnight,
            _fixed(occurrence, plan),
            not_after=p.midnight(today + dt.timedelta(days=1)),
        )


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _welcome_subjects(p: _Pass) -> Iterator[Subject]:
    """Patients added (or who consented, per the site) in the last EVENT_LOOKBACK."""
    event = p.rx.welcome_on
    column = "consented_at" if event is PatientEvent.CONSENTED else "created_at"
    rows = Patient.objects.filter(
        site_id=p.site.id, is_active=True, **{f"{column}__gte": p.now - EVENT_LOOKBACK}
    ).order_by("id")
    for pid, first, last, at in rows.values_list("id", "first_name", "last_name", column):

        def plan(ch, zone, at=at):
            return plan_welcome(p.policy, ch, event, at, p.rx, p.now, zone)

        yield Subject(pid, f"{first} {last}", "patient", [pid], at, _fixed(f"p{pid}", plan))


# SMS frequency caps -------------------------------------------------------------------------------


class SmsCaps:
    """The SMS caps (carebell.core.caps) for one site's pass: the texts already in the
    outbox plus those planned earlier in the pass, per patient and phone number (two
    parents each get their one text a day about a child)."""

    def __init__(self, site_id: int, now: dt.datetime) -> None:
        self.site_id, self.now = site_id, now
        self.history: dict[tuple[int, str], list[SmsRecord]] = defaultdict(list)
        self.loaded: set[int] = set()

    def load(self, patient_ids: Iterable[int]) -> None:
        ids = sorted(set(patient_ids) - self.loaded)
        for chunk in _chunks(ids):
            rows = OutboxMessage.objects.filter(
                site_id=self.site_id, channel=Channel.SMS.value, patient_id__in=chunk,
                kind__in=[k.value for k in CAPPED_KINDS],
                planned_at__gte=self.now - dt.timedelta(days=8),
            ).exclude(status__in=_NOT_SENT)  # fmt: skip
            fields = ("patient_id", "to_address", "planned_at", "sent_at", "kind", "dedupe_key")
            for pid, to, planned, sent, kind, key in rows.values_list(*fields):
                self.history[(pid, to)].append(SmsRecord(sent or planned, Kind(kind), key))
        self.loaded.update(ids)

    def apply(self, d: Decision, zone: ZoneInfo | None, policy: DeliveryPolicy, now) -> None:
        """Defer `d` to the first day with room, or skip it with the cap's reasons."""
        kind = Kind(d.kind)
        if d.channel != Channel.SMS.value or kind not in CAPPED_KINDS or d.patient_id is None:
            return
        key = (d.patient_id, d.to)
        # Its own stored row is not a rival: re-planning must reach the same answer.
        # Records are passed as sent, so the core defers rather than combines: merging
        # two different kinds' texts into one needs the renderer's help.
        others = [r for r in self.history[key] if r.message_id != d.dedupe_key]
        found = check_sms_cap(kind, Channel.SMS, d.planned_at, others, zone or policy.zone)
        if found.action is CapAction.DEFER:
            plan = plan_event(policy, Channel.SMS, found.at, now, zone)
            d.planned_at, d.reasons = plan.at, (*d.reasons, *found.reasons, *plan.reasons)
        elif found.action is not CapAction.ALLOW:
            d.planned_at, d.reasons = None, (*d.reasons, *found.reasons)
        if d.planned_at is None:
            d.status = "skipped"
            return
        self.history[key].append(SmsRecord(d.planned_at, kind, d.dedupe_key))
