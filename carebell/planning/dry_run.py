"""`carebell plan --dry-run`: what would go out in a period, and what would not, with
rendered SMS segment counts. Reads only; writes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from carebell.core.windows import DeliveryPolicy, zone_for
from carebell.dispatch import rendering
from carebell.messaging.models import AutomatedMessage, OutboxMessage
from carebell.planning import appointments, daily
from carebell.planning.decisions import Decision, masked
from carebell.planning.policies import PolicyCache
from carebell.sites.models import Site

RENDER_BATCH = 500


def plan_period(
    sites: Iterable[Site], now: dt.datetime, start: dt.datetime, end: dt.datetime
) -> Iterator[dict]:
    """One dict per decision whose planned time (or event) falls in [start, end)."""
    policies = PolicyCache()
    for site in sites:
        rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
        if not rules:
            continue
        policy = policies.for_site(site)
        found = decisions(site, rules, policy, now, end)
        chosen = (d for d in found if in_period(d, start, end))
        batch: list[Decision] = []
        for decision in chosen:
            batch.append(decision)
            if len(batch) >= RENDER_BATCH:
                yield from _lines(site, batch)
                batch = []
        yield from _lines(site, batch)


def decisions(
    site: Site,
    rules: list[AutomatedMessage],
    policy: DeliveryPolicy,
    now: dt.datetime,
    end: dt.datetime,
    patient_ids: list[int] | None = None,
) -> Iterator[Decision]:
    """What the planner's passes from `now` until `end` would decide, nothing stored:
    the appointment messages, the events of the pass at `now`, and the daily batch of
    each site-local day whose process starts before `end` (of `patient_ids` only, if
    given). A later day's batch may decide again what an earlier one did (the same
    dedupe key): the earlier decision is the one that counts."""
    # One SMS-cap ledger, as in a pass: nothing is stored, so the daily steps could not
    # read the appointment texts from the outbox.
    caps = daily.SmsCaps(site.id, now)
    yield from appointments.plan_site_appointments(
        site, rules, policy, now, end + appointments.HORIZON, patient_ids=patient_ids, caps=caps
    )
    # Events are what already happened: the pass at `now` finds them all (a later pass
    # would find the same ones, or fewer as they age past the lookback).
    yield from daily.plan_site_events(site, rules, policy, now, caps, patient_ids=patient_ids)
    batches = list(_daily_batches(site, policy, now, end))
    # Some patients' batches read their rows once for all the days (a forecast).
    only = daily.Only(patient_ids, [day for day, _ in batches]) if patient_ids else None
    for _day, when in batches:
        yield from daily.plan_site_daily(site, rules, policy, when, caps, only=only)


def _daily_batches(site, policy, now: dt.datetime, end: dt.datetime) -> Iterator[tuple]:
    """(site-local day, when its batch runs) for each day whose process starts before
    `end`, today's included: at its start, or at `now` if that is later."""
    day = policy.local_date(now)
    while (day_start := policy.local_instant(day, site.delivery.daily_process_start)) < end:
        yield day, max(now, day_start)
        day += dt.timedelta(days=1)


def in_period(decision: Decision, start: dt.datetime, end: dt.datetime) -> bool:
    moment = decision.planned_at if decision.planned else decision.event_at
    return moment is None or start <= moment < end


def _lines(site: Site, batch: list[Decision]) -> Iterator[dict]:
    seen: set[str] = set()
    unique = []
    for d in batch:
        if d.planned and d.dedupe_key in seen:
            continue  # the daily pass of two simulated days may plan the same message
        seen.add(d.dedupe_key)
        unique.append(d)
    drafts = [_draft(site, d) for d in unique]
    rendering.render_batch([m for m, d in zip(drafts, unique, strict=True) if d.planned])
    for message, decision in zip(drafts, unique, strict=True):
        yield _line(site, message, decision)


def _draft(site: Site, d: Decision) -> OutboxMessage:
    return OutboxMessage(
        site=site,
        patient_id=d.patient_id,
        contact_id=d.contact_id,
        to_address=d.to,
        channel=d.channel or "sms",
        kind=d.kind,
        language=d.language,
        entity_type=d.entity_type,
        entity_id=d.entity_id,
        entity_ids=d.entity_ids,
        event_at=d.event_at,
        rule_id=d.rule_id,
    )


def _line(site: Site, message: OutboxMessage, d: Decision) -> dict:
    site_zone = zone_for(site.time_zone)
    recipient_zone = message.contact.time_zone if d.contact_id and message.contact else ""
    zone = zone_for(recipient_zone) if recipient_zone else site_zone
    return {
        "status": d.status,
        "kind": d.kind,
        "channel": d.channel,
        "site": site.name,
        "site_id": site.id,
        "patient_id": d.patient_id,
        "contact_id": d.contact_id,
        "to": masked(d.to) if d.to else "",
        "entity_type": d.entity_type,
        "entity_id": d.entity_id,
        "entity_ids": d.entity_ids,
        "event_at": d.event_at.astimezone(site_zone).isoformat() if d.event_at else None,
        "planned_at": d.planned_at.astimezone(zone).isoformat() if d.planned_at else None,
        "template": getattr(message, "template_label", None) if d.planned else None,
        "segments": message.segments if d.planned and d.channel == "sms" else None,
        "reasons": [r.code.value for r in d.reasons],
    }
