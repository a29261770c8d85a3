"""Appointment messages (SPEC §5.1, §5.2): confirmations and reminders at each
offset of each enabled rule, to every eligible contact, siblings combined.

One query reads the whole period (appointments with their patients' contacts),
streamed in chunks on PostgreSQL; the rows are planned one site-local day at a time,
so same-day siblings meet. The SMS caps apply to every text planned: the texts
already stored are read once for the pass (the site's, or the patients' asked
about), and the pass's own count as they are planned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from carebell.core.channels import choose_channels, plan_recipients
from carebell.core.grouping import AppointmentItem, group_siblings
from carebell.core.timing import AppointmentFacts, Offset, plan_appointment_message
from carebell.core.vocab import AppointmentStatus, Category, Channel, Kind, OffsetUnit
from carebell.core.windows import DeliveryPolicy, zone_for
from carebell.messaging.models import AutomatedMessage
from carebell.planning import contacts as contact_rows
from carebell.planning.contacts import LoadedContact, as_datetime
from carebell.planning.decisions import Decision, dedupe_key
from carebell.planning.sms_caps import SmsCaps
from carebell.prepared import execute_prepared, read_together
from carebell.sites.models import Site
from carebell.sql import ints, utc_params

APPOINTMENT_KINDS = (Kind.APPT_CONFIRMATION, Kind.APPT_REMINDER)
#: How far ahead appointments are planned; later ones are planned on a later pass.
HORIZON = dt.timedelta(days=45)
#: Rows fetched at a time from the server-side cursor.
FETCH = 5_000
#: Up to this many patients, their rows are read at once rather than by a cursor.
FEW_PATIENTS = 200

_SQL = f"""
SELECT a.id, a.patient_id, a.starts_at, a.status, a.appointment_type, a.provider_code,
       a.location_code, p.first_name, p.last_name, {contact_rows.COLUMNS}
FROM appointments_appointment a JOIN people_patient p ON p.id = a.patient_id
LEFT JOIN people_contact c ON c.patient_id = a.patient_id
{contact_rows.JOINS}
WHERE a.site_id = %s AND a.starts_at >= %s AND a.starts_at < %s
  AND a.status IN ('booked', 'confirmed', 'cancel_requested') {{patients}}
ORDER BY a.starts_at, a.id, c.position
"""
# A row's columns by name. Rows stay plain tuples (see _Day: a tuple subclass
# built per row would cost the garbage collector and a million constructions a pass).
_ID, _PATIENT, _STARTS, _STATUS_COL, _TYPE, _PROVIDER, _LOCATION, _FIRST, _LAST = range(9)
_CONTACT = 9  # where a row's contact columns start
_STATUS = {s.value: s for s in AppointmentStatus}
_KIND = {k.value: k for k in Kind}
_MIDNIGHT = dt.time(0)
_SMS = Channel.SMS.value
_TICK = dt.timedelta(microseconds=1)


def offsets_of(rule: AutomatedMessage) -> list[Offset]:
    """The rule's offsets; a rule without any uses the kind's default."""
    found = []
    for item in rule.offsets or []:
        unit = OffsetUnit.HOURS if "hours" in item else OffsetUnit.DAYS
        found.append(Offset(int(item.get(unit.value, 0)), unit))
    if found:
        return found
    return [Offset(3 if rule.kind == Kind.APPT_CONFIRMATION else 1)]


def passes_filters(rule: AutomatedMessage, row: tuple) -> bool:
    filters = rule.filters or {}
    checks = (
        ("appointment_types", row[_TYPE]),
        ("providers", row[_PROVIDER]),
        ("locations", row[_LOCATION]),
    )
    return all(not filters.get(name) or value in filters[name] for name, value in checks)


class _Day:
    """One site-local day of appointments, each as its start and its rows (one per
    contact of the patient). Rows stay plain tuples until planned: objects built
    ahead for a whole day would outlive the young generations and make every full
    garbage collection walk them."""

    __slots__ = ("appointments", "day", "uniform")

    def __init__(self, day: dt.date, uniform: bool) -> None:
        self.day = day
        self.uniform = uniform  # every start has the date `day` (no DST change)
        self.appointments: list[tuple[dt.datetime, tuple[tuple, ...]]] = []


def plan_site_appointments(
    site: Site,
    rules: list[AutomatedMessage],
    policy: DeliveryPolicy,
    now: dt.datetime,
    until: dt.datetime | None = None,
    *,
    start: dt.datetime | None = None,
    patient_ids: list[int] | None = None,
    caps: SmsCaps | None = None,
) -> Iterator[Decision]:
    """Every decision for the site's open appointments from `start` (default `now`;
    from the start of its site-local day) to `until`, optionally of some patients
    only, one site-local day at a time so same-day siblings meet. Texts keep to the
    SMS caps of `caps` (pass the ledger the pass's other kinds use; default: one of
    their own): a text that does not fit is deferred, or skipped with the caps'
    reasons (see outbox.is_capped)."""
    rules = [r for r in rules if r.kind in APPOINTMENT_KINDS]
    if not rules:
        return
    end = until or now + HORIZON
    day = policy.local_date(max(start or now, now))
    lower = max(policy.local_instant(day, _MIDNIGHT), now)
    if lower >= end:
        return
    caps = caps if caps is not None else SmsCaps(site.id, now)
    plans = [(rule, offset) for rule in rules for offset in offsets_of(rule)]
    # A rule's own window and days (its settings override) time its messages.
    by_rule = {rule.id: policy.overridden(rule.settings_override) for rule in rules}
    rows = None
    few = _few_read(site.id, lower, end, patient_ids, Category.REMINDERS)
    history = caps.read_for(patient_ids) if few else None
    if history:  # a change's replan: its appointments and texts in one round trip
        rows, texts = read_together([few, history])
        caps.loaded_from(patient_ids, texts)
    else:
        caps.load(patient_ids)  # None: the site's texts, one query for the sweep
    for batch in _days(site.id, policy, day, lower, end, patient_ids, rows):
        for decision in _plan_day(site, plans, policy, by_rule, now, batch):
            if decision.planned and decision.channel == _SMS:
                caps.apply(decision, decision.zone, by_rule.get(decision.rule_id, policy), now)
            yield decision


def _days(site_id, policy, day, lower, end, patient_ids, read=None) -> Iterator[_Day]:
    """The appointments in [lower, end) with their contacts, one site-local day at a
    time (the day of `lower` first, then each following day); `read`: their rows,
    read already."""
    day_start, day_end = policy.day_span(day)
    batch = _Day(day, _is_uniform(policy, day_start, day_end))
    rows: list[tuple] = []
    start = None
    if read is None:
        read = _rows(site_id, lower, end, patient_ids, Category.REMINDERS)
    for row in read:
        if rows and row[_ID] != rows[0][_ID]:
            batch.appointments.append((start, tuple(rows)))
            rows = []
        if not rows:
            start = as_datetime(row[_STARTS])
            if start >= day_end:
                if batch.appointments:
                    yield batch
                while start >= day_end:
                    day += dt.timedelta(days=1)
                    day_start, day_end = policy.day_span(day)
                batch = _Day(day, _is_uniform(policy, day_start, day_end))
        rows.append(row)
    if rows:
        batch.appointments.append((start, tuple(rows)))
    if batch.appointments:
        yield batch


def _is_uniform(policy: DeliveryPolicy, day_start: dt.datetime, day_end: dt.datetime) -> bool:
    # Every instant of a day without a change of UTC offset has that day's date; on a
    # DST day each appointment's own date is looked up.
    zone = policy.zone
    return day_start.astimezone(zone).utcoffset() == (day_end - _TICK).astimezone(zone).utcoffset()


def _few_read(site_id, start, end, patient_ids, category) -> tuple[str, list] | None:
    """On PostgreSQL, the prepared statement of a few patients' rows; else None.

    A change's replan, the same seven-table join over and over: prepared, it is
    planned once per connection, where planning it cost PostgreSQL 2.7 ms and running
    it for one patient 0.5 ms. The ids travel as one array so that the text, hence the
    prepared statement, is the same for any number of them."""
    if connection.vendor != "postgresql" or patient_ids is None or len(patient_ids) > FEW_PATIENTS:
        return None
    sql = _SQL.format(patients="AND a.patient_id = ANY(%s::bigint[])")
    return sql, utc_params([category, site_id, start, end, ints(patient_ids)])


def _rows(site_id, start, end, patient_ids: list[int] | None, category) -> Iterator[tuple]:
    few = _few_read(site_id, start, end, patient_ids, category)
    if few is not None:
        with execute_prepared(*few) as cursor:
            yield from cursor.fetchall()
        return
    only = ""
    if patient_ids is not None:
        only = (
            f"AND a.patient_id IN ({','.join(['%s'] * len(patient_ids))})"
            if patient_ids
            else "AND 1 = 0"
        )
    params = utc_params([category, site_id, start, end, *(patient_ids or [])])
    if connection.vendor != "postgresql":
        # A few patients' rows (a change, a replan) are few: one round trip, no cursor.
        with connection.cursor() as cursor:
            cursor.execute(_SQL.format(patients=only), params)
            yield from cursor.fetchall()
        return
    # A server-side cursor: the period may hold millions of rows.
    with connection.chunked_cursor() as cursor:
        with _every_row_wanted():
            cursor.execute(_SQL.format(patients=only), params)  # DECLARE: planned now
        while rows := cursor.fetchmany(FETCH):
            yield from rows


@contextmanager
def _every_row_wanted() -> Iterator[None]:
    # PostgreSQL plans a cursor for its first 10% of rows (nested loops); this one is
    # read to the end, where hash joins win: 8 s instead of 25 s for a million.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('cursor_tuple_fraction'),"
            " set_config('cursor_tuple_fraction', '1', false)"
        )
        before = cursor.fetchone()[0]
        try:
            yield
        finally:
            cursor.execute("SELECT set_config('cursor_tuple_fraction', %s, false)", [before])


def _plan_day(site, plans, policy, by_rule, now, batch: _Day) -> Iterator[Decision]:
    """The day's decisions in the order of the rules and offsets, each one's skipped
    decisions first, then its planned ones combined. Each appointment's contacts are
    read once for all of them; decisions wait for the end of the day as plain tuples
    (see _Day) and become Decisions as they go out."""
    today = policy.local_date(now)
    settings = policy.settings
    kinds = [_KIND[rule.kind] for rule, _ in plans]
    skipped: list[list[tuple]] = [[] for _ in plans]
    planned: list[list[tuple]] = [[] for _ in plans]
    for start, rows in batch.appointments:
        row = rows[0]
        facts = AppointmentFacts(row[_ID], row[_PATIENT], site.id, start, _STATUS[row[_STATUS_COL]])
        contacts = [
            contact_rows.read_contact(row[_PATIENT], r[_CONTACT:], Category.REMINDERS)
            for r in rows
            if r[_CONTACT] is not None
        ]
        by_id = {c.facts.contact_id: c for c in contacts}
        choices: dict[Kind, tuple] = {}  # recipients per kind, shared by the rules
        name = f"{row[_FIRST]} {row[_LAST]}"
        for n, (rule, offset) in enumerate(plans):
            if rule.filters and not passes_filters(rule, row):
                continue
            kind = kinds[n]
            chosen = choices.get(kind)
            if chosen is None:
                chosen = choices[kind] = _recipients(contacts, kind, settings, today)
            timed = by_rule[rule.id]
            for found in _decide(timed, now, offset, facts, name, by_id, chosen):
                (planned if found[0] == "planned" else skipped)[n].append(found)
    for n, (rule, offset) in enumerate(plans):
        make = _Maker(kinds[n].value, site.id, rule.id)
        for found in skipped[n]:
            yield make(found)
        yield from _combine(planned[n], settings.combine_siblings, make, offset, batch, policy)


def _recipients(contacts: list[LoadedContact], kind: Kind, settings, today) -> tuple:
    if len(contacts) == 1:  # nobody to share a contact point with
        return (choose_channels(contacts[0].facts, kind, settings, today),)
    return plan_recipients([c.facts for c in contacts], kind, settings, today)


def _decide(policy, now, offset, facts, name, by_id, choices) -> Iterator[tuple]:
    """(status, channel, contact id, contact point id, to, planned at, reasons,
    language, appointment id, patient id, start, patient name, recipient zone) per
    decision."""
    appointment_id, patient_id, starts_at = facts.appointment_id, facts.patient_id, facts.start
    for choice in choices:
        contact = by_id[choice.contact_id]
        if not choice.deliveries:
            yield (
                "skipped", "", choice.contact_id, None, "", None, choice.reasons, "en",
                appointment_id, patient_id, starts_at, name, None,
            )  # fmt: skip
        zone = zone_for(contact.facts.zone) if contact.facts.zone else None
        for delivery in choice.deliveries:
            plan = plan_appointment_message(policy, delivery.channel, facts, offset, now, zone)
            reasons = plan.reasons
            if choice.reasons:
                reasons = (*choice.reasons, *reasons)
            yield (
                "planned" if plan.at is not None else "skipped", delivery.channel.value,
                choice.contact_id, contact.point_ids.get(delivery.address), delivery.address,
                plan.at, reasons, contact.language, appointment_id, patient_id, starts_at, name,
                zone,
            )  # fmt: skip


class _Maker:
    """Turns _decide's tuples into Decisions of one rule."""

    __slots__ = ("kind", "rule_id", "site_id")

    def __init__(self, kind: str, site_id: int, rule_id: int) -> None:
        self.kind, self.site_id, self.rule_id = kind, site_id, rule_id

    def __call__(self, found: tuple) -> Decision:
        (status, channel, contact_id, point_id, to, planned_at, reasons, language,
         appointment_id, patient_id, starts_at, name, zone) = found  # fmt: skip
        return Decision(
            status, self.kind, channel, self.site_id, patient_id, contact_id, point_id, to,
            "appointment", appointment_id, starts_at, planned_at, reasons, self.rule_id,
            language, name, not_after=starts_at, zone=zone,
        )  # fmt: skip


def _combine(planned: list[tuple], combine: bool, make: _Maker, offset, batch: _Day, policy):
    """One message per contact point and site-local day (when the site combines
    siblings), keyed so re-planning finds it again."""
    prefix = f"r{make.rule_id}:{offset.amount}{offset.unit.value[0]}:"
    if not combine:
        for found in planned:
            d = make(found)
            d.dedupe_key = _key(prefix, d, [d])
            yield d
        return
    groups: dict[tuple, list[tuple]] = {}
    for found in planned:
        day = batch.day if batch.uniform else policy.local_date(found[10])
        groups.setdefault((found[1], found[4], day), []).append(found)
    for (_, _, day), members in groups.items():
        if len(members) == 1:
            d = make(members[0])
            d.dedupe_key = _key(prefix, d, [d])
            yield d
        else:
            yield _siblings(prefix, [make(found) for found in members], day)


def _siblings(prefix: str, members: list[Decision], day: dt.date) -> Decision:
    # One decision per appointment and contact point.
    by_item = {(d.entity_id, d.channel, d.to): d for d in members}
    items = [_item(d, day) for d in members]
    [group] = group_siblings(items)
    ordered = [by_item[(i.appointment_id, i.channel, i.address)] for i in group.items]
    first = min(ordered, key=lambda d: d.planned_at)
    first.entity_ids = [d.entity_id for d in ordered]
    first.reasons = (*first.reasons, *group.reasons)
    first.dedupe_key = _key(prefix, first, ordered)
    return first


def _item(d: Decision, day: dt.date) -> AppointmentItem:
    return AppointmentItem(
        Channel(d.channel),
        d.to,
        Kind(d.kind),
        d.site_id,
        day,
        d.patient_id,
        d.entity_id,
        d.event_at,
    )


def _key(prefix: str, first: Decision, members: list[Decision]) -> str:
    ids = ".".join([str(d.entity_id) for d in members])
    starts = ",".join([str(int(d.event_at.timestamp())) for d in members])
    return dedupe_key(f"{prefix}{first.channel}:{first.to}:a{ids}@{starts}")
