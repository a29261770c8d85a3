"""Pharmacy, greeting and recall messages (SPEC §5.1, §5.4–§5.5): the planner's entry
points.

Two entry points, both called by the runner: `plan_site_events` on every pass, for
what should not wait a day (ready for pickup, pickup confirmation, welcome), and
`plan_site_daily` once a day after the site's daily process start (`is_due`,
`mark_done`) for pickup reminders, refill reminders, review requests, birthdays and
recalls. `plan_patient_recalls` is what `carebell explain` asks about one patient.
A patient's forecast (`forecast`, through `dry_run.decisions`) calls both for one
patient: the events with `patient_ids`, the daily batch of each coming day with an
`Only`, whose rows each kind reads once for all the days.

Each kind finds its subjects in its own module (`pharmacy`, `refills`, `reviews`,
`greetings`, `recalls`), reading rows set-based, a few queries per site and kind; `subjects`
turns them into decisions, contacts a chunk of patients at a time, and `sms_caps`
holds the pass's SMS caps. Every timing and eligibility question goes to
`carebell.core`. Each decision's `dedupe_key` names rule, kind, subject, occurrence
and contact point, so planning the same thing again stores nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

from django.db import transaction

from carebell.core.vocab import Kind
from carebell.core.windows import DeliveryPolicy
from carebell.messaging.models import AutomatedMessage, PlannerLease
from carebell.planning.decisions import Decision
from carebell.planning.greetings import birthday_subjects, welcome_subjects
from carebell.planning.pharmacy import (
    Ids,
    Only,
    confirmation_subjects,
    contacts_of,
    pharmacy_settings,
    ready_subjects,
    reminder_subjects,
)
from carebell.planning.recalls import plan_recalls
from carebell.planning.refills import REFILL_KINDS, plan_refills
from carebell.planning.reviews import REVIEW_LINK_OPENED, plan_reviews
from carebell.planning.sms_caps import SmsCaps
from carebell.planning.subjects import EVENT_LOOKBACK, SitePass, decide
from carebell.sites.models import Site

# Re-exported: the runner, the dry run and tests use them through this module.
__all__ = [
    "DAILY_KINDS",
    "EVENT_KINDS",
    "EVENT_LOOKBACK",
    "REVIEW_LINK_OPENED",
    "Only",
    "SmsCaps",
    "is_due",
    "mark_done",
    "pharmacy_settings",
    "plan_patient_recalls",
    "plan_site_daily",
    "plan_site_events",
]

EVENT_KINDS = frozenset({Kind.RX_READY, Kind.RX_PICKUP_CONFIRMATION, Kind.WELCOME})
DAILY_KINDS = frozenset(
    {
        Kind.RX_PICKUP_REMINDER,
        Kind.REFILL_DUE,
        Kind.REFILL_PAST_DUE,
        Kind.REFILL_ASK_PRESCRIBER,
        Kind.REVIEW_REQUEST,
        Kind.BIRTHDAY,
        Kind.RECALL,
    }
)


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
    *,
    patient_ids: Ids = None,
) -> Iterator[Decision]:
    """Ready notices, pickup confirmations and welcomes for events of the last
    EVENT_LOOKBACK not yet announced; called on every planner pass. Pass the same
    `caps` to both entry points of one pass so their texts count against each other.
    Given `patient_ids`, for those patients only (a patient's forecast)."""
    p = _new_pass(site, rules, policy, now, EVENT_KINDS, caps)
    if p is None:
        return
    ids = patient_ids
    for rule in p.rules.get(Kind.RX_READY, []):
        rp = p.for_rule(rule)
        yield from decide(rp, rule, Kind.RX_READY, ready_subjects(rp, ids))
    for rule in p.rules.get(Kind.RX_PICKUP_CONFIRMATION, []):
        rp = p.for_rule(rule)
        yield from decide(rp, rule, Kind.RX_PICKUP_CONFIRMATION, confirmation_subjects(rp, ids))
    for rule in p.rules.get(Kind.WELCOME, []):
        rp = p.for_rule(rule)
        yield from decide(rp, rule, Kind.WELCOME, welcome_subjects(rp, ids))


def plan_site_daily(
    site: Site,
    rules: list[AutomatedMessage],
    policy: DeliveryPolicy,
    now: dt.datetime,
    caps: SmsCaps | None = None,
    *,
    only: Only | None = None,
) -> Iterator[Decision]:
    """The daily batch for the site's local date of `now`: pickup reminders, refill
    reminders, review requests, birthdays and recalls. Given `only`, for its patients
    only, as the batch of one of its days (a forecast: call it for its days in order)."""
    p = _new_pass(site, rules, policy, now, DAILY_KINDS, caps)
    if p is None:
        return
    for rule in p.rules.get(Kind.RX_PICKUP_REMINDER, []):
        rp = p.for_rule(rule)
        subjects = reminder_subjects(rp, only)
        yield from decide(rp, rule, Kind.RX_PICKUP_REMINDER, subjects, contacts_of(only))
    if any(k in p.rules for k in REFILL_KINDS):
        yield from plan_refills(p, only)
    for rule in p.rules.get(Kind.REVIEW_REQUEST, []):
        yield from plan_reviews(p.for_rule(rule), rule, only)
    for rule in p.rules.get(Kind.BIRTHDAY, []):
        rp = p.for_rule(rule)
        subjects = birthday_subjects(rp, only)
        yield from decide(rp, rule, Kind.BIRTHDAY, subjects, contacts_of(only))
    for rule in p.rules.get(Kind.RECALL, []):
        yield from plan_recalls(p.for_rule(rule), rule, only and only.patient_ids)


def plan_patient_recalls(
    site: Site,
    rules: list[AutomatedMessage],
    policy: DeliveryPolicy,
    now: dt.datetime,
    patient_id: int,
    caps: SmsCaps | None = None,
) -> Iterator[Decision]:
    """The recall messages the daily batch of `now`'s local date would plan for one
    patient, with their reasons."""
    p = _new_pass(site, rules, policy, now, frozenset({Kind.RECALL}), caps)
    for rule in p.rules.get(Kind.RECALL, []) if p is not None else []:
        yield from plan_recalls(p.for_rule(rule), rule, [patient_id])


def _new_pass(site, rules, policy, now, kinds: frozenset[Kind], caps) -> SitePass | None:
    by_kind: dict[Kind, list[AutomatedMessage]] = defaultdict(list)
    for rule in rules:
        if rule.enabled and rule.kind in kinds:
            by_kind[Kind(rule.kind)].append(rule)
    if not by_kind:
        return None
    rx = pharmacy_settings(site, bool(by_kind.get(Kind.REFILL_ASK_PRESCRIBER)))
    return SitePass(site, policy, now, dict(by_kind), rx, caps or SmsCaps(site.id, now))
