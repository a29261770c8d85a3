"""The SMS frequency caps' ledger for one site's planning pass.

`carebell.core.caps` decides; `SmsCaps` feeds it each patient's texts (those already
in the outbox, loaded on demand, plus those planned earlier in the pass) and applies
its answer to a decision: allow, defer to a day with room, or skip.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from carebell.core.caps import CapAction, CapDecision, SmsRecord, check_sms_cap
from carebell.core.schedule import plan_event
from carebell.core.vocab import CAPPED_KINDS, Channel, Kind, OutboxStatus
from carebell.core.windows import DeliveryPolicy
from carebell.messaging.models import OutboxMessage
from carebell.messaging.planning.decisions import Decision
from carebell.messaging.planning.subjects import chunks

# Rows that no longer count toward the SMS caps: they will never reach the patient.
_NOT_SENT = [OutboxStatus.CANCELLED.value, OutboxStatus.BLOCKED.value, OutboxStatus.FAILED.value]


class SmsCaps:
    """The SMS caps (carebell.core.caps) for one site's pass: the texts already in the
    outbox plus those planned earlier in the pass, per patient and phone number (two
    parents each get their one text a day about a child)."""

    def __init__(self, site_id: int, now: dt.datetime) -> None:
        self.site_id, self.now = site_id, now
        self.history: dict[tuple[int, str], list[SmsRecord]] = defaultdict(list)
        self.loaded: set[int] = set()

    def load(self, patient_ids: Iterable[int]) -> None:
        """Read the outbox's capped texts of these patients (each patient once)."""
        ids = sorted(set(patient_ids) - self.loaded)
        for chunk in chunks(ids):
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
        _follow(found, d, zone, policy, now)
        if d.planned_at is None:
            d.status = "skipped"
            return
        self.history[key].append(SmsRecord(d.planned_at, kind, d.dedupe_key))


def _follow(found: CapDecision, d: Decision, zone, policy: DeliveryPolicy, now) -> None:
    """Move `d` to the first time the caps allow, or clear its time when there is none."""
    if found.action is CapAction.DEFER:
        plan = plan_event(policy, Channel.SMS, found.at, now, zone)
        d.planned_at, d.reasons = plan.at, (*d.reasons, *found.reasons, *plan.reasons)
    elif found.action is not CapAction.ALLOW:
        d.planned_at, d.reasons = None, (*d.reasons, *found.reasons)
