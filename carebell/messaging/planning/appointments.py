"""Appointment messages (SPEC §5.1, §5.2): confirmations and reminders at each
offset of each enabled rule, to every eligible contact, siblings combined."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.db import connection

from carebell.core.channels import plan_recipients
from carebell.core.grouping import AppointmentItem, group_siblings
from carebell.core.timing import AppointmentFacts, Offset, plan_appointment_message
from carebell.core.vocab import AppointmentStatus, Category, Channel, Kind, OffsetUnit
from carebell.core.windows import DeliveryPolicy, zone_for
from carebell.messaging.models import AutomatedMessage
from carebell.messaging.planning.contacts import LoadedContact, as_datetime, load_contacts
from carebell.messaging.planning.decisions import Decision, dedupe_key
from carebell.sites.models import Site

APPOINTMENT_KINDS = (Kind.APPT_CONFIRMATION, Kind.APPT_REMINDER)
#: How far ahead appointments are planned; later ones are planned on a later pass.
HORIZON = dt.timedelta(days=45)

_SQL = """
SELECT a.id, a.patient_id, a.starts_at, a.status, a.appointment_type, a.provider_code,
       a.location_code, p.first_name, p.last_name
FROM appointments_appointment a JOIN people_patient p ON p.id = a.patient_id
WHERE a.site_id = %s AND a.starts_at >= %s AND a.starts_at < %s
  AND a.status IN ('booked', 'confirmed', 'cancel_requested') {patients}
ORDER BY a.starts_at, a.id
"""


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
    checks = (("appointment_types", row[4]), ("providers", row[5]), ("locations", row[6]))
    return all(not filters.get(name) or value in filters[name] for name, value in checks)


def plan_site_appointments(
    site: Site,
    rules: list[AutomatedMessage],
    policy: DeliveryPolicy,
    now: dt.datetime,
    until: dt.datetime | None = None,
    *,
    start: dt.datetime | None = None,
    patient_ids: list[int] | None = None,
) -> Iterator[Decision]:
    """Every decision for the site's open appointments from `start` (default `now`)
    to `until`, optionally of some patients only, one site-local day at a time so
    same-day siblings meet."""
    rules = [r for r in rules if r.kind in APPOINTMENT_KINDS]
    if not rules:
        return
    end = until or now + HORIZON
    day = policy.local_date(max(start or now, now))
    while (day_start := policy.local_instant(day, dt.time(0))) < end:
        day_end = policy.local_instant(day + dt.timedelta(days=1), dt.time(0))
        rows = _appointments(site.id, max(day_start, now), min(day_end, end), patient_ids)
        if rows:
            yield from _plan_day(site, rules, policy, now, rows, day)
        day += dt.timedelta(days=1)


def _appointments(site_id, start, end, patient_ids: list[int] | None) -> list[tuple]:
    only = ""
    if patient_ids is not None:
        only = (
            f"AND a.patient_id IN ({','.join(['%s'] * len(patient_ids))})"
            if patient_ids
            else "AND 1 = 0"
        )
    with connection.cursor() as cursor:
        cursor.execute(_SQL.format(patients=only), [site_id, start, end, *(patient_ids or [])])
        return cursor.fetchall()


def _plan_day(site, rules, policy, now, rows, day) -> Iterator[Decision]:
    contacts = load_contacts({r[1] for r in rows}, Category.REMINDERS)
    today = policy.local_date(now)
    settings = policy.settings
    for rule in rules:
        for offset in offsets_of(rule):
            planned: list[tuple[AppointmentItem, Decision]] = []
            for row in rows:
                if not passes_filters(rule, row):
                    continue
                for decision in _decide(
                    site, rule, offset, policy, now, today, row, contacts.get(row[1], [])
                ):
                    if decision.planned:
                        planned.append((_item(decision, rule, site, day), decision))
                    else:
                        yield decision
            yield from _combine(planned, settings.combine_siblings, rule, offset)


def _decide(site, rule, offset, policy, now, today, row, contacts: list[LoadedContact]):
    appointment_id, patient_id, starts_at, status = row[0], row[1], as_datetime(row[2]), row[3]
    facts = AppointmentFacts(
        appointment_id, patient_id, site.id, starts_at, AppointmentStatus(status)
    )
    kind = Kind(rule.kind)
    by_id = {c.facts.contact_id: c for c in contacts}
    choices = plan_recipients([c.facts for c in contacts], kind, policy.settings, today)
    base = {
        "kind": kind.value,
        "site_id": site.id,
        "patient_id": patient_id,
        "entity_type": "appointment",
        "entity_id": appointment_id,
        "event_at": starts_at,
        "not_after": starts_at,
        "rule_id": rule.id,
        "entity_name": f"{row[7]} {row[8]}",
    }
    for choice in choices:
        contact = by_id[choice.contact_id]
        if not choice.deliveries:
            yield Decision(
                "skipped",
                channel="",
                contact_id=choice.contact_id,
                contact_point_id=None,
                to="",
                planned_at=None,
                reasons=choice.reasons,
                **base,
            )
        zone = zone_for(contact.facts.zone) if contact.facts.zone else None
        for delivery in choice.deliveries:
            plan = plan_appointment_message(policy, delivery.channel, facts, offset, now, zone)
            yield Decision(
                "planned" if plan.planned else "skipped",
                channel=delivery.channel.value,
                contact_id=choice.contact_id,
                contact_point_id=contact.point_ids.get(delivery.address),
                to=delivery.address,
                planned_at=plan.at,
                reasons=(*choice.reasons, *plan.reasons),
                language=contact.language,
                **base,
            )


def _item(decision: Decision, rule, site, day) -> AppointmentItem:
    return AppointmentItem(
        Channel(decision.channel),
        decision.to,
        Kind(decision.kind),
        site.id,
        decision.event_at.astimezone(site_zone(site)).date(),
        decision.patient_id,
        decision.entity_id,
        decision.event_at,
    )


def site_zone(site: Site) -> ZoneInfo:
    return zone_for(site.time_zone)


def _combine(planned, combine: bool, rule, offset: Offset) -> Iterator[Decision]:
    decisions = {(item.appointment_id, item.channel, item.address): d for item, d in planned}
    for group in group_siblings([item for item, _ in planned], combine):
        members = [decisions[(i.appointment_id, i.channel, i.address)] for i in group.items]
        first = min(members, key=lambda d: d.planned_at)
        ids = [d.entity_id for d in members]
        first.entity_ids = ids if len(ids) > 1 else []
        first.reasons = (*first.reasons, *group.reasons)
        starts = ",".join(str(int(d.event_at.timestamp())) for d in members)
        first.dedupe_key = dedupe_key(
            f"r{rule.id}:{offset.amount}{offset.unit.value[0]}:{first.channel}:{first.to}:"
            f"a{'.'.join(map(str, ids))}@{starts}"
        )
        yield first
