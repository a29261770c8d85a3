"""Planning again after a change of whom to tell or how (SPEC §3, §4): a patient's
contacts, contact points and preferences, a number's opt-in, a site's time zone or
delivery settings. Runs in the transaction of the change, so no message planned
under the old facts goes out after it commits.

What the outbox holds pending for the patients (or the site) is judged again:

- appointment messages are planned afresh by the appointment planner and matched
  with the pending rows by occurrence key. A row whose key the new plan has stays
  (moved, and given its contact and language again, if those changed); a row whose
  key it lacks is closed with the reasons — blocked when they are about the recipient
  (opted_out, no_consent, unverified, ineligible), else cancelled — and gives its key
  back; what the plan has that the outbox lacks is stored.
- the other rows (the kinds the daily and event passes plan, which work site by
  site; appointment messages of a rule since disabled) are judged row by row with
  the send-time rule (`core.channels.delivery_problem`): a row its contact may no
  longer receive is closed, one whose time the settings no longer allow moves to the
  next allowed time, or is cancelled when none remains before its deadline. What
  then applies instead (a new number, a channel a ladder now reaches) is planned by
  the planner's next pass where it is still due: the event kinds on every pass, the
  daily kinds on their next daily batch.

Rows closed here give their occurrence key back (`outbox.close_replanned`), so
when the facts change back the same occurrence is planned again.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple

from django.db import transaction
from django.db.models import Q

from carebell import outbox
from carebell.appointments.models import Appointment
from carebell.core.channels import delivery_problem
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import KIND_CATEGORY, Channel, EntityType, Kind
from carebell.core.windows import DeliveryPolicy, zone_for
from carebell.messaging.models import PENDING, AutomatedMessage, OutboxMessage
from carebell.outbox import OutboxWriter
from carebell.planning.appointments import (
    APPOINTMENT_KINDS,
    HORIZON,
    plan_site_appointments,
)
from carebell.planning.contacts import load_contacts_by_id
from carebell.planning.decisions import Decision
from carebell.planning.policies import PolicyCache
from carebell.prepared import Prepared
from carebell.sites.models import Site

_APPOINTMENT_KINDS = [k.value for k in APPOINTMENT_KINDS]


@dataclass
class Replanned:
    """What a replan did to the pending rows of its scope, and what it stored."""

    kept: int = 0
    moved: int = 0
    closed: int = 0
    stored: int = 0


class _Row(NamedTuple):
    """A pending outbox row, as replanning reads it."""

    id: int
    kind: str
    channel: str
    to_address: str
    contact_id: int | None
    contact_point_id: int | None
    language: str
    entity_id: int | None
    entity_ids: list
    entity_name: str
    planned_at: dt.datetime
    not_after: dt.datetime | None
    dedupe_key: str | None


#: Inside `once_at_end`: the patients to replan per site, with the first reason and
#: the latest time asked for.
_DEFERRED: ContextVar[dict[int, list] | None] = ContextVar("carebell_replans", default=None)
#: Inside `once_at_end`: each site's facts (`site_facts`), read once for the block.
_FACTS: ContextVar[dict | None] = ContextVar("carebell_site_facts", default=None)


@contextmanager
def once_at_end() -> Iterator[None]:
    """Replan each patient once, at the end of the block, however many entry points
    inside it asked: a feed message or a FHIR transaction that saves a patient, their
    contacts and numbers would otherwise replan the patient after every save. Use it
    inside the change's transaction, so the replan commits with it; an error in the
    block replans nothing (the transaction is rolled back). Nested blocks replan
    with the outermost.

    The block is one change (a message, a request, a batch): the sites' delivery
    settings and rules are read once for it (`site_facts`), and its audit entries
    are written in one INSERT at its end (`trail.batched`)."""
    from carebell.audit import trail

    if _DEFERRED.get() is not None:
        yield
        return
    wanted: dict[int, list] = {}
    token, facts = _DEFERRED.set(wanted), _FACTS.set({})
    try:
        with trail.batched():
            try:
                yield
            finally:
                _DEFERRED.reset(token)
            for site, ids, why, now in wanted.values():
                replan_patients(site, ids, now=now, why=why)
    finally:
        _FACTS.reset(facts)


def read_for_block(site: Site) -> None:
    """Inside `once_at_end`: `site`, read with its delivery settings
    (select_related("delivery")) for this change, is the block's site (no read
    again); its rules are read when first wanted."""
    cache = _FACTS.get()
    if cache is not None and site.pk not in cache:
        cache[site.pk] = site


def site_facts(site) -> tuple[Site, DeliveryPolicy, list[AutomatedMessage]]:
    """The site (a Site or its id) with its delivery settings, its delivery policy
    and its enabled rules: read from the database, once per `once_at_end` block."""
    site_id = site if isinstance(site, int) else site.pk
    cache = _FACTS.get()
    found = cache.get(site_id) if cache is not None else None
    if not isinstance(found, tuple):
        # Read again (unless the block's door did): the caller may hold the instance
        # it just saved, without its delivery settings, or with stale ones.
        row = found or Site.objects.select_related("delivery").get(pk=site_id)
        rules = _ENABLED_RULES.objects(row.pk)
        found = (row, PolicyCache().for_site(row), rules)
        if cache is not None:
            cache[site_id] = found
    return found


#: A site's enabled rules, read by every change that replans (a prepared statement).
_ENABLED_RULES = Prepared(
    lambda site_id: AutomatedMessage.objects.filter(site_id=site_id, enabled=True), -1
)


def replan_patients(
    site: Site, patient_ids: Iterable[int], *, now: dt.datetime, why: Reason
) -> Replanned:
    """Judge again the pending messages of these patients of `site` (see the module
    docstring); `why` heads the reasons of every row closed or moved. Inside
    `once_at_end` this only notes them (and returns an empty count)."""
    ids = sorted(set(patient_ids))
    done = Replanned()
    if not ids:
        return done
    wanted = _DEFERRED.get()
    if wanted is not None:
        entry = wanted.setdefault(site.id, [site, set(), why, now])
        entry[1].update(ids)
        entry[3] = max(entry[3], now)
        return done
    with transaction.atomic():
        site, policy, rules = site_facts(site)
        appointment_rules = [r for r in rules if r.kind in APPOINTMENT_KINDS]
        others = _rows(_pending(site).filter(patient_id__in=ids))
        if appointment_rules:
            family, pending = _family_rows(site, set(ids), appointment_rules, now)
            decisions = plan_site_appointments(site, rules, policy, now, patient_ids=sorted(family))
            _reconcile(pending, decisions, why, now, done)
            planned_again = {r.id for r in pending}
            others = [r for r in others if r.id not in planned_again]
        _judge(others, policy, now, why, done)
    return done


def replan_site(site: Site, *, now: dt.datetime, why: Reason) -> Replanned:
    """Judge again every pending message of `site` under its current time zone and
    delivery settings, set-based: one planner read of its appointments, one query for
    the pending rows of each part, bulk writes for what changed."""
    done = Replanned()
    with transaction.atomic():
        site, policy, rules = _site_facts(site)
        appointment_rules = [r for r in rules if r.kind in APPOINTMENT_KINDS]
        in_scope = _appointment_rows(site, appointment_rules, now)
        others = _rows(_pending(site).exclude(id__in=in_scope.values("id")))
        if appointment_rules:
            decisions = plan_site_appointments(site, rules, policy, now)
            _reconcile(_rows(in_scope), decisions, why, now, done)
        _judge(others, policy, now, why, done)
    return done


def _site_facts(site: Site) -> tuple[Site, DeliveryPolicy, list[AutomatedMessage]]:
    # Read now, never from a block's cache: the site's settings have just changed.
    site = Site.objects.select_related("delivery").get(pk=site.pk)
    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    return site, PolicyCache().for_site(site), rules


def _pending(site: Site):
    return OutboxMessage.objects.filter(site_id=site.id, status__in=PENDING)


def _rows(queryset) -> list[_Row]:
    return [_Row(*values) for values in queryset.values_list(*_Row._fields).order_by("id")]


# Appointment messages ------------------------------------------------------------------


def _appointment_rows(site: Site, rules: list[AutomatedMessage], now: dt.datetime):
    """The pending appointment messages the appointment planner would plan again: of
    the enabled rules, about appointments in its horizon."""
    return _pending(site).filter(
        kind__in=_APPOINTMENT_KINDS,
        rule_id__in=[r.id for r in rules],
        dedupe_key__isnull=False,
        not_after__gt=now,
        event_at__lt=now + HORIZON,
    )


def _family_rows(site, patient_ids: set[int], rules, now) -> tuple[set[int], list[_Row]]:
    """The patients to plan again and their pending appointment messages: these
    patients, and every patient a combined message of theirs also lists (siblings),
    until no message lists anyone new."""
    family = set(patient_ids)
    while True:
        appointments = Appointment.objects.filter(patient_id__in=sorted(family))
        about = Q(patient_id__in=sorted(family)) | Q(
            subjects__entity_type=EntityType.APPOINTMENT,
            subjects__entity_id__in=appointments.values("id"),
        )
        rows = {r.id: r for r in _rows(_appointment_rows(site, rules, now).filter(about))}
        listed = {i for r in rows.values() for i in (r.entity_ids or [r.entity_id])}
        more = set()
        if listed:
            ids = Appointment.objects.filter(id__in=sorted(listed)).values_list("patient_id")
            more = {patient_id for (patient_id,) in ids}
        if more <= family:
            return family, list(rows.values())
        family |= more


def _reconcile(
    pending: list[_Row], decisions: Iterator[Decision], why: Reason, now, done: Replanned
) -> None:
    """Match the planner's decisions with the pending rows by key, streaming: a site's
    plan is read once and never held whole."""
    by_key = {r.dedupe_key: r for r in pending}
    wanted = {(r.entity_id, r.contact_id) for r in pending}
    seen: set[str] = set()
    skipped: dict[tuple, list[Reason]] = defaultdict(list)
    moves: list[outbox.Move] = []
    writer = OutboxWriter(now)
    for d in decisions:
        row = by_key.get(d.dedupe_key) if d.dedupe_key else None
        if row is not None:
            seen.add(row.dedupe_key)
            if d.planned and _differs(row, d):
                moves.append(_move_to(row, d))
        elif d.dedupe_key:
            writer.store(d)  # planned, or kept back by the SMS caps (stored as blocked)
        elif (d.entity_id, d.contact_id) in wanted:
            skipped[(d.entity_id, d.contact_id)].extend(d.reasons)
    closures = [
        (r.id, (why, *dict.fromkeys(skipped.get((r.entity_id, r.contact_id), ()))))
        for r in pending
        if r.dedupe_key not in seen
    ]
    done.closed += outbox.close_replanned(closures, now)
    done.moved += outbox.move_planned(moves, [why], now)
    done.kept += len(pending) - len(closures) - len(moves)
    writer.flush()
    done.stored += writer.offered


def _differs(row: _Row, d: Decision) -> bool:
    return (row.planned_at, row.contact_id, row.contact_point_id, row.language) != (
        d.planned_at,
        d.contact_id,
        d.contact_point_id,
        d.language,
    ) or row.entity_name != d.entity_name[:200]


def _move_to(row: _Row, d: Decision) -> outbox.Move:
    return outbox.Move(
        row.id, d.planned_at, d.contact_id, d.contact_point_id, d.language, d.entity_name[:200]
    )


# Other kinds -----------------------------------------------------------------------------


def _judge(rows: list[_Row], policy: DeliveryPolicy, now, why: Reason, done: Replanned) -> None:
    """Each row against its contact's current facts and the site's current windows."""
    contacts = _contacts_of(rows)
    today = policy.local_date(now)
    closures: list[tuple[int, tuple[Reason, ...]]] = []
    moves: list[outbox.Move] = []
    for row in rows:
        kind = Kind(row.kind)
        contact = contacts.get((KIND_CATEGORY.get(kind), row.contact_id))
        if contact is None:  # no contact to judge (a reply, a staff notice)
            continue
        channel = Channel(row.channel)
        facts = contact.facts
        problem = delivery_problem(facts, kind, channel, row.to_address, policy.settings, today)
        if problem is not None:
            closures.append((row.id, (why, problem)))
            continue
        at = max(row.planned_at, now)
        zone = zone_for(facts.zone) if facts.zone else None
        if policy.why_not(channel, at, zone) is None:
            continue
        later = policy.earliest_allowed(channel, at, row.not_after, zone)
        if later is None or (row.not_after is not None and later >= row.not_after):
            late = reason(Code.NO_ALLOWED_TIME, not_before=at, target=row.not_after)
            closures.append((row.id, (why, late)))
        else:
            moves.append(outbox.Move(row.id, later, row.contact_id, row.contact_point_id,
                                      row.language, row.entity_name))  # fmt: skip
    done.closed += outbox.close_replanned(closures, now)
    done.moved += outbox.move_planned(moves, [why], now)
    done.kept += len(rows) - len(closures) - len(moves)


def _contacts_of(rows: list[_Row]) -> dict:
    """The rows' contacts as the planner reads them, per (category, contact id): one
    query per category."""
    wanted: dict = defaultdict(set)
    for row in rows:
        category = KIND_CATEGORY.get(Kind(row.kind))
        if category is not None and row.contact_id is not None:
            wanted[category].add(row.contact_id)
    found = {}
    for category, ids in wanted.items():
        for contact_id, loaded in load_contacts_by_id(ids, category).items():
            found[(category, contact_id)] = loaded
    return found
