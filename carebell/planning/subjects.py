"""From subjects to decisions, for the pharmacy and greeting messages.

Each kind's module finds its `Subject`s (what a message is about and how to time it);
`decide` turns them into decisions: the recipients per patient, a plan per delivery,
the dedupe key and the SMS caps. `SitePass` is what every kind needs to know about
one site's planning pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from carebell.core.channels import ALL_CHANNELS, Delivery, plan_recipients
from carebell.core.reasons import Reason
from carebell.core.schedule import PharmacySettings
from carebell.core.timing import Plan
from carebell.core.vocab import CAPPED_KINDS, Channel, Kind
from carebell.core.windows import DeliveryPolicy, DeliverySettings, zone_for
from carebell.messaging.models import AutomatedMessage
from carebell.planning.contacts import LoadedContact, load_contacts
from carebell.planning.decisions import Decision, dedupe_key
from carebell.sites.models import Site

if TYPE_CHECKING:
    # Only a type here: sms_caps imports `chunks` from this module.
    from carebell.planning.sms_caps import SmsCaps

#: How long an event stays news: a fill ready, a pickup or a new patient older than
#: this is not announced, so enabling a rule does not message the whole history.
EVENT_LOOKBACK = dt.timedelta(days=2)
CHUNK = 2000

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
class SitePass:
    """One site's planning pass: what every kind needs to know."""

    site: Site
    policy: DeliveryPolicy
    now: dt.datetime
    rules: dict[Kind, list[AutomatedMessage]]
    rx: PharmacySettings
    caps: SmsCaps
    #: The drug classes the rule being planned covers (empty: every drug).
    drugs: frozenset[str] = frozenset()

    @property
    def today(self) -> dt.date:
        return self.policy.local_date(self.now)

    def midnight(self, day: dt.date) -> dt.datetime:
        return self.policy.local_instant(day, dt.time(0))

    def for_rule(self, rule) -> SitePass:
        """This pass as `rule` plans: timed by its own window and delivery days when
        it overrides the site's (SPEC §4), for the drug classes its filter names."""
        timed = self.policy.overridden(rule.settings_override)
        drugs = frozenset((rule.filters or {}).get("drug_classes") or ())
        if timed is self.policy and drugs == self.drugs:
            return self
        return dataclasses.replace(self, policy=timed, drugs=drugs)


def decide(
    p: SitePass, rule, kind: Kind, subjects: Iterable[Subject], contacts_of=load_contacts
) -> Iterator[Decision]:
    """Every decision for these subjects: recipients per patient, a plan per delivery,
    the SMS caps; contacts loaded CHUNK patients at a time (by `contacts_of`, which a
    forecast gives to read its patient's contacts once for all its days)."""
    settings = _rule_settings(p.policy.settings, rule, kind)
    for chunk in chunks(list(subjects)):
        ids = {s.patient_id for s in chunk}
        contacts = contacts_of(ids, kind.category)
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


def _for_subject(
    p: SitePass, rule, kind, settings, subject: Subject, contacts: list[LoadedContact]
) -> Iterator[Decision]:
    """Per recipient: one skipped decision when nothing reaches them, else one per delivery
    that has a plan."""
    by_id = {c.facts.contact_id: c for c in contacts}
    base = _shared_fields(p, rule, kind, subject)
    for choice in plan_recipients([c.facts for c in contacts], kind, settings, p.today):
        contact = by_id[choice.contact_id]
        reasons = (*subject.reasons, *choice.reasons)
        if not choice.deliveries:
            yield _unreachable(base, subject, choice.contact_id, reasons)
        zone = zone_for(contact.facts.zone) if contact.facts.zone else None
        for delivery in choice.deliveries:
            found = subject.plan_for(delivery, zone)
            if found is None:
                continue
            decision = _for_delivery(base, subject, contact, delivery, found, reasons)
            if decision.planned:
                p.caps.apply(decision, zone, p.policy, p.now)
            yield decision


def _shared_fields(p: SitePass, rule, kind: Kind, subject: Subject) -> dict:
    """The fields every decision about `subject` has in common."""
    return {
        "kind": kind.value, "site_id": p.site.id, "patient_id": subject.patient_id,
        "entity_type": subject.entity_type, "entity_id": subject.entity_ids[0],
        "event_at": subject.event_at, "not_after": subject.not_after, "rule_id": rule.id,
        "entity_name": subject.name,
    }  # fmt: skip


def _unreachable(base: dict, subject: Subject, contact_id: int, reasons) -> Decision:
    return Decision(
        "skipped", channel="", contact_id=contact_id, contact_point_id=None, to="",
        planned_at=None, reasons=reasons, entity_ids=_listed(subject.entity_ids), **base,
    )  # fmt: skip


def _for_delivery(
    base: dict, subject: Subject, contact: LoadedContact, delivery, found, reasons
) -> Decision:
    plan, occurrence = found
    channel = delivery.channel.value
    key = f"r{base['rule_id']}:{base['kind']}:{occurrence}:{channel}:{delivery.address}"
    return Decision(
        "planned" if plan.planned else "skipped", channel=channel,
        contact_id=contact.facts.contact_id,
        contact_point_id=contact.point_ids.get(delivery.address), to=delivery.address,
        planned_at=plan.at, reasons=(*reasons, *plan.reasons), language=contact.language,
        entity_ids=_listed(subject.entity_ids), dedupe_key=dedupe_key(key), **base,
    )  # fmt: skip


def _listed(ids: list[int]) -> list[int]:
    # A message about one entity names it in entity_id alone.
    return list(ids) if len(ids) > 1 else []


def fixed(occurrence: str, plan: Callable[[Channel, ZoneInfo | None], Plan]) -> PlanFor:
    """A PlanFor whose occurrence is the same for every delivery."""
    return lambda delivery, zone: (plan(delivery.channel, zone), occurrence)


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def joined(ids: Iterable[object]) -> str:
    return ".".join(str(i) for i in ids)
