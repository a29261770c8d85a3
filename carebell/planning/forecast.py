"""A patient's forecast (SPEC §11, the messaging panel): what every planner would
queue for one patient in the coming days, and what it would not, and why.

It is the dry run (`dry_run.decisions`) restricted to the patient's rows: the
appointment messages, the events the next pass announces (ready for pickup, pickup
confirmation, welcome) and the daily batch of each coming site-local day (pickup and
refill reminders, review requests, birthdays, recalls) — the planners' own code, so
the same rules in carebell.core decide. Each decision is set against the outbox row
already holding its occurrence, if any, so a plan is never mistaken for a send. Reads
only; writes nothing.

What it cannot know is what happens meanwhile: it assumes no fill is picked up, no
prescription refilled and no review link opened before the day it looks at, and, as
nothing is sent, it shows a review request's next send, not the resends after it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from carebell.messaging.models import AutomatedMessage
from carebell.people.models import Patient
from carebell.planning import dry_run
from carebell.planning.decisions import Decision
from carebell.planning.explain import Held, held_rows
from carebell.planning.policies import PolicyCache

FORECAST_DAYS = 30


@dataclasses.dataclass(slots=True)
class Forecast:
    """One decision of the forecast and the outbox row that already holds its
    occurrence (None: the planner would store it when its day comes)."""

    decision: Decision
    held: Held | None

    @property
    def at(self) -> dt.datetime | None:
        """When it would go, or, for one that would not, when its event is."""
        d = self.decision
        return d.planned_at if d.planned else d.event_at


def forecast_patient(
    patient: Patient, now: dt.datetime, days: int = FORECAST_DAYS
) -> list[Forecast]:
    """What planning would decide for `patient` from `now` for `days` days: the
    messages it would plan in that period and those it would not send (with their
    reasons), each once, in time order."""
    site = patient.site
    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    if not rules:
        return []
    policy = PolicyCache().for_site(site)
    end = now + dt.timedelta(days=days)
    found = dry_run.decisions(site, rules, policy, now, end, patient_ids=[patient.id])
    chosen = _first_of_each([d for d in found if dry_run.in_period(d, now, end)])
    held = held_rows(chosen)
    lines = [Forecast(d, held.get(d.dedupe_key) if d.dedupe_key else None) for d in chosen]
    return sorted(lines, key=lambda line: (line.at or now, line.decision.kind))


def _first_of_each(decisions: Iterable[Decision]) -> list[Decision]:
    """Each occurrence once: the daily batches of several days may decide the same
    message (a review request, nothing being stored, or a recall in its grace days),
    and the first is the one the planner would store."""
    seen: set[object] = set()
    out = []
    for d in decisions:
        key = d.dedupe_key or (
            d.kind, d.rule_id, d.entity_type, d.entity_id, tuple(d.entity_ids), d.contact_id,
            d.channel, d.to, d.event_at,
        )  # fmt: skip
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
