"""What is checked again just before a message goes out.

Between planning and sending, an appointment may have been cancelled, a number
opted out, consent revoked, or the worker may have been down until quiet hours.
Each check returns a Verdict with its reasons; the outbox writer applies them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q

from carebell import outbox
from carebell.appointments.models import Appointment
from carebell.core import content
from carebell.core.caps import WEEK_DAYS, CapAction, SmsRecord, fit_sms_cap
from carebell.core.channels import OPTED_OUT_CODE, block_reason_for, delivery_problem
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import (
    CAPPED_KINDS,
    KIND_CATEGORY,
    PHONE_CHANNELS,
    STAFF_KINDS,
    AppointmentStatus,
    BlockReason,
    Channel,
    EntityType,
    Kind,
    OutboxStatus,
)
from carebell.core.windows import DeliveryPolicy, zone_for
from carebell.messaging.models import AutomatedMessage, OutboxMessage
from carebell.pharmacy.models import Fill
from carebell.planning.contacts import load_contacts_by_id
from carebell.planning.policies import PolicyCache

#: Answers to the contact's own action go at once: a STOP confirmation, a code the
#: patient is waiting for at the counter, a staff reply in a live conversation; and
#: notices to staff (STAFF_KINDS), whom no patient's window or quiet hours concern.
IMMEDIATE_KINDS = frozenset({Kind.VERIFICATION, Kind.INBOX_REPLY, Kind.KEYWORD_REPLY}) | STAFF_KINDS
PICKUP_KINDS = frozenset({Kind.RX_READY, Kind.RX_PICKUP_REMINDER})


@dataclass(frozen=True)
class Verdict:
    status: OutboxStatus  # cancelled, blocked, or scheduled (= deferred)
    reasons: tuple[Reason, ...]
    block_reason: BlockReason | None = None
    defer_to: dt.datetime | None = None


def _cancel(*reasons: Reason) -> Verdict:
    return Verdict(OutboxStatus.CANCELLED, reasons)


def _block(block: BlockReason, *reasons: Reason) -> Verdict:
    return Verdict(OutboxStatus.BLOCKED, reasons, block_reason=block)


def check_at_send(
    messages: list[OutboxMessage],
    now: dt.datetime,
    policies: PolicyCache,
    entities: dict | None = None,
) -> dict[int, Verdict]:
    """Verdicts for the messages that must not go now; the others may. `entities`
    (`rendering.load_entities` of these messages) saves reading their subjects twice."""
    states = _subject_states(messages) if entities is None else _states_of(entities)
    timing = _Timing(messages, policies)
    windows = _Windows(now, timing)
    eligibility = _Eligibility(messages, now, policies)
    caps = _Caps(messages, now, timing)
    verdicts: dict[int, Verdict] = {}
    for message in messages:
        verdict = (
            _event_check(message, now)
            or _subject_check(message, states)
            or _recipient_check(message)
            or eligibility.check(message)
            or windows.check(message)
            or caps.check(message)
        )
        if verdict is not None:
            verdicts[message.id] = verdict
    return verdicts


def _event_check(message: OutboxMessage, now: dt.datetime) -> Verdict | None:
    """Never after the event the message is about (SPEC §4): a reminder once the
    appointment started, a birthday greeting the day after."""
    if message.not_after is None or now < message.not_after:
        return None
    if Kind(message.kind).is_appointment:
        return _cancel(reason(Code.APPOINTMENT_PASSED, start=message.not_after))
    return _cancel(reason(Code.TARGET_PASSED, target=message.not_after))


def _subject_states(messages: list[OutboxMessage]) -> dict[tuple[str, int], str]:
    """Current status of every appointment and fill the batch is about."""
    ids: dict[str, set[int]] = {"appointment": set(), "fill": set()}
    for m in messages:
        if m.entity_type in ids:
            ids[m.entity_type].update(m.entity_ids or [m.entity_id])
    states = {
        (EntityType.APPOINTMENT, i): s
        for i, s in Appointment.objects.filter(id__in=ids["appointment"]).values_list(
            "id", "status"
        )
    }
    states.update(
        ((EntityType.FILL, i), s)
        for i, s in Fill.objects.filter(id__in=ids["fill"]).values_list("id", "step")
    )
    return states


def _states_of(entities: dict) -> dict[tuple[str, int], str]:
    states = {}
    for (entity_type, entity_id), entity in entities.items():
        if entity_type == EntityType.APPOINTMENT:
            states[entity_type, entity_id] = entity.status
        elif entity_type == EntityType.FILL:
            states[entity_type, entity_id] = entity.step
    return states


def _subject_check(message: OutboxMessage, states: dict) -> Verdict | None:
    for entity_id in message.entity_ids or [message.entity_id]:
        state = states.get((message.entity_type, entity_id))
        if state is None:
            continue
        if message.entity_type == EntityType.APPOINTMENT:
            verdict = _appointment_verdict(message, AppointmentStatus(state))
        else:
            verdict = _fill_verdict(message, state)
        if verdict is not None:
            return verdict
    return None


def _appointment_verdict(message: OutboxMessage, status: AppointmentStatus) -> Verdict | None:
    # An acknowledgement of a cancellation is about a closed appointment by design.
    if status.is_open or message.kind == Kind.APPT_CANCEL_ACK:
        return None
    gone = status in (AppointmentStatus.CANCELLED, AppointmentStatus.DELETED)
    code = Code.APPOINTMENT_CANCELLED if gone else Code.APPOINTMENT_NOT_OPEN
    return _cancel(reason(code, status=status))


def _fill_verdict(message: OutboxMessage, step: str) -> Verdict | None:
    if message.kind not in PICKUP_KINDS or step not in ("picked_up", "returned_to_stock"):
        return None
    return _cancel(reason(Code.PICKED_UP if step == "picked_up" else Code.RETURNED_TO_STOCK))


def _recipient_check(message: OutboxMessage) -> Verdict | None:
    point = message.contact_point
    if point is None:
        return None
    channel = Channel(message.channel)
    if getattr(point, f"opted_out_{channel.value}"):
        code = OPTED_OUT_CODE[channel]
        return _block(BlockReason.OPTED_OUT, reason(code))
    if message.kind in IMMEDIATE_KINDS:
        return None
    delivery = message.site.delivery
    consent_needed = channel in PHONE_CHANNELS and delivery.require_opt_in
    if consent_needed and not getattr(point, f"consent_{channel.value}"):
        return _block(BlockReason.NO_CONSENT, reason(Code.NO_CONSENT, channel=channel))
    if delivery.only_verified and point.verified_at is None:
        return _block(BlockReason.UNVERIFIED, reason(Code.NOT_VERIFIED, channel=channel))
    return None


class _Eligibility:
    """The contact's eligibility judged again (SPEC §3.2), the last line behind the
    replan every change makes: authority, end date, the preference for the kind's
    category, and the contact point still being the one addressed
    (`core.channels.delivery_problem`, on the facts the planner reads). One query
    per category among the batch's messages, never one per message."""

    def __init__(self, messages: list, now: dt.datetime, policies: PolicyCache) -> None:
        self.now, self.policies = now, policies
        wanted: dict = defaultdict(set)
        for message in messages:
            category = _category_of(message)
            if category is not None:
                wanted[category].add(message.contact_id)
        self.contacts = {
            category: load_contacts_by_id(ids, category) for category, ids in wanted.items()
        }

    def check(self, message) -> Verdict | None:
        category = _category_of(message)
        if category is None:
            return None
        contact = self.contacts[category].get(message.contact_id)
        if contact is None:
            return None
        policy = self.policies.for_site(message.site)
        problem = delivery_problem(
            contact.facts, Kind(message.kind), Channel(message.channel), message.to_address,
            policy.settings, policy.local_date(self.now),
        )  # fmt: skip
        if problem is None:
            return None
        return _block(block_reason_for([problem]) or BlockReason.INELIGIBLE, problem)


def _category_of(message):
    """The preference category governing `message`, when it has a contact to judge."""
    if message.contact_id is None or message.kind in IMMEDIATE_KINDS:
        return None
    return KIND_CATEGORY.get(message.kind)


class _Timing:
    """The delivery policy each message of a batch is timed by: its site's, or its
    rule's own window and days when the rule overrides them (SPEC §4) — the planner
    timed it so, and the send-time checks must not undo that. One query per batch
    reads the overrides of the batch's rules; most rules have none."""

    def __init__(self, messages: list, policies: PolicyCache) -> None:
        self.policies = policies
        rule_ids = {m.rule_id for m in messages if m.rule_id is not None}
        self.overrides: dict[int, dict] = {}
        if rule_ids:
            rows = AutomatedMessage.objects.filter(id__in=rule_ids).exclude(settings_override={})
            self.overrides = dict(rows.values_list("id", "settings_override"))

    def policy_of(self, message) -> DeliveryPolicy:
        policy = self.policies.for_site(message.site)
        return policy.overridden(self.overrides.get(message.rule_id))


class _Windows:
    """The window check for one batch: every message shares `now`, so whether a
    channel may send now is asked once per site, rule override, channel and zone."""

    def __init__(self, now: dt.datetime, timing: _Timing) -> None:
        self.now = now
        self.timing = timing
        self._why_not: dict[tuple, Reason | None] = {}

    def check(self, message: OutboxMessage) -> Verdict | None:
        if message.kind in IMMEDIATE_KINDS:
            return None
        zone = message.contact.time_zone if message.contact is not None else ""
        policy = self.timing.policy_of(message)
        key = (id(policy), message.channel, zone)
        if key not in self._why_not:
            self._why_not[key] = policy.why_not(
                Channel(message.channel), self.now, _recipient_zone(message)
            )
        if self._why_not[key] is None:
            return None
        return _window_check(message, self.now, policy)


def _window_check(message: OutboxMessage, now: dt.datetime, policy) -> Verdict | None:
    """A message that became due while no worker ran may now fall in quiet hours:
    move it to the next allowed time, or drop it if that is past its deadline."""
    if message.kind in IMMEDIATE_KINDS:
        return None
    channel = Channel(message.channel)
    recipient_zone = _recipient_zone(message)
    why = policy.why_not(channel, now, recipient_zone)
    if why is None:
        return None
    later = policy.earliest_allowed(channel, now, message.not_after, recipient_zone)
    if later is None or (message.not_after is not None and later >= message.not_after):
        return _cancel(why, reason(Code.NO_ALLOWED_TIME))
    return Verdict(
        OutboxStatus.SCHEDULED, (why, reason(Code.MOVED_LATER_TO_WINDOW, at=later)), defer_to=later
    )


class _Caps:
    """The SMS frequency caps (SPEC §4) at send time, for one batch: a capped text goes
    only if the texts already sent to the patient's number from the site leave room
    (the planner kept to the caps, but a text may have been planned another way, or
    moved by a window or a retry onto a full day). No room today: deferred to the first
    allowed instant of the next day with room; none before its event: blocked (cap),
    with the reasons. One query per batch reads what was sent."""

    def __init__(self, messages: list, now: dt.datetime, timing: _Timing) -> None:
        self.now, self.timing = now, timing
        self.sent: dict[tuple[int, int, str], list[SmsRecord]] = defaultdict(list)
        capped = [m for m in messages if _is_capped_text(m)]
        if not capped:
            return
        since = now - dt.timedelta(days=WEEK_DAYS + 1)
        rows = (
            OutboxMessage.objects.filter(
                site_id__in={m.site_id for m in capped},
                patient_id__in={m.patient_id for m in capped},
                channel=Channel.SMS.value,
                kind__in=[k.value for k in CAPPED_KINDS],
                status__in=[s.value for s in _GONE_OUT],
            )
            .filter(Q(sent_at__gte=since) | Q(sent_at__isnull=True, due_at__gte=since))
            .exclude(id__in=[m.id for m in messages])
        )
        fields = ("site_id", "patient_id", "to_address", "sent_at", "due_at", "kind")
        for site_id, patient_id, to, sent_at, due_at, kind in rows.values_list(*fields):
            self.sent[(site_id, patient_id, to)].append(SmsRecord(sent_at or due_at, Kind(kind)))

    def check(self, message) -> Verdict | None:
        if not _is_capped_text(message):
            return None
        sent = self.sent[(message.site_id, message.patient_id, message.to_address)]
        policy = self.timing.policy_of(message)
        zone = _recipient_zone(message)

        def window(at: dt.datetime) -> dt.datetime | None:
            return policy.earliest_allowed(Channel.SMS, at, message.not_after, zone)

        found = fit_sms_cap(
            Kind(message.kind), Channel.SMS, self.now, sent, zone or policy.zone,
            message.not_after, window,
        )  # fmt: skip
        if found.action is CapAction.ALLOW:
            sent.append(SmsRecord(self.now, Kind(message.kind)))  # the next of the batch
            return None
        if found.action is CapAction.DEFER:
            return Verdict(OutboxStatus.SCHEDULED, found.reasons, defer_to=found.at)
        return _block(BlockReason.CAP, *found.reasons)


#: Texts that reached, or are reaching, the provider: they count toward the caps.
_GONE_OUT = frozenset(
    {OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.UNDELIVERED}
)


def _is_capped_text(message) -> bool:
    return (
        message.channel == Channel.SMS.value
        and message.kind in CAPPED_KINDS
        and message.patient_id is not None
    )


def _recipient_zone(message: OutboxMessage):
    contact = message.contact
    return zone_for(contact.time_zone) if contact is not None and contact.time_zone else None


def check_content(
    messages: list[OutboxMessage], verdicts: dict[int, Verdict]
) -> dict[int, Verdict]:
    """Restricted words (SPEC §6.4): a rendered message that contains one is not sent."""
    found: dict[int, Verdict] = {}
    words_by_site: dict[int, tuple[str, ...]] = {}
    for message in messages:
        if message.id in verdicts:
            continue
        words = words_by_site.setdefault(
            message.site_id, tuple(message.site.delivery.restricted_words)
        )
        # Empty parts skipped: each text costs a scan and the word list's set-up.
        texts = [t for t in (message.subject, message.body, message.html_body) if t]
        hit = content.check_outbound(texts, words)
        if hit is not None:
            found[message.id] = _block(
                BlockReason.WORD_RESTRICTED, reason(Code.WORD_RESTRICTED, word=hit.word)
            )
    return found


def apply_verdicts(verdicts: dict[int, Verdict], now: dt.datetime) -> None:
    """Store each verdict through the outbox writer."""
    for message_id, verdict in verdicts.items():
        if verdict.status == OutboxStatus.CANCELLED:
            outbox.close_message(message_id, OutboxStatus.CANCELLED, verdict.reasons, now)
        elif verdict.status == OutboxStatus.BLOCKED:
            outbox.close_message(
                message_id,
                OutboxStatus.BLOCKED,
                verdict.reasons,
                now,
                block_reason=verdict.block_reason,
            )
        else:
            outbox.defer_message(message_id, verdict.defer_to, verdict.reasons, now)
