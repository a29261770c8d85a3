"""The SMS frequency caps' ledger for one site's planning pass.

`carebell.core.caps` decides; `SmsCaps` feeds it each patient's texts (those already
in the outbox, loaded a batch of patients at a time, plus those planned earlier in
the pass) and applies its answer to a decision: allow, defer to the first allowed
instant of a day with room, or skip with the caps' reasons (the writer then keeps it
as `blocked` (cap): never silently dropped). Appointment, recall and pharmacy
treatment texts share one ledger, so they share one budget per patient and site.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from carebell.core.caps import CapAction, SmsRecord, fit_sms_cap
from carebell.core.vocab import CAPPED_KINDS, Channel, Kind, OutboxStatus
from carebell.core.windows import DeliveryPolicy
from carebell.messaging.models import OutboxMessage
from carebell.messaging.planning.decisions import Decision
from carebell.messaging.planning.subjects import chunks

# Rows that no longer count toward the SMS caps: they will never reach the patient.
_NOT_SENT = [OutboxStatus.CANCELLED.value, OutboxStatus.BLOCKED.value, OutboxStatus.FAILED.value]
_SMS = Channel.SMS.value
_CAPPED = frozenset(k.value for k in CAPPED_KINDS)
_KIND = {k.value: k for k in Kind}
#: How far back stored texts still count: the rolling week before the earliest day
#: a text of this pass can be planned on, and a day for time zones.
LOOKBACK = dt.timedelta(days=8)


class SmsCaps:
    """The SMS caps (carebell.core.caps) for one site's pass: the texts already in the
    outbox plus those planned earlier in the pass, per patient and phone number (two
    parents each get their one text a day about a child)."""

    def __init__(self, site_id: int, now: dt.datetime) -> None:
        self.site_id, self.now = site_id, now
        # Per (patient, number): its texts, one per dedupe key (a stored row planned
        # again in this pass replaces itself, never counts twice).
        self.history: dict[tuple[int, str], list[SmsRecord]] = {}
        self.loaded: set[int] = set()

    def load(self, patient_ids: Iterable[int]) -> None:
        """Read the outbox's capped texts of these patients (each patient once), one
        query per chunk of patients."""
        ids = sorted(set(patient_ids) - self.loaded)
        if not ids:
            return
        fields = (
            "patient_id", "to_address", "planned_at", "sent_at", "kind", "dedupe_key",
            "entity_type", "entity_id",
        )  # fmt: skip
        for chunk in chunks(ids):
            rows = OutboxMessage.objects.filter(
                site_id=self.site_id, channel=_SMS, patient_id__in=chunk, kind__in=_CAPPED,
                planned_at__gte=self.now - LOOKBACK,
            ).exclude(status__in=_NOT_SENT)  # fmt: skip
            for pid, to, planned, sent, kind, key, etype, eid in rows.values_list(*fields):
                record = SmsRecord(sent or planned, _KIND[kind], key, False, (etype, eid))
                self._remember((pid, to), record)
        self.loaded.update(ids)

    def apply(self, d: Decision, zone: ZoneInfo | None, policy: DeliveryPolicy, now) -> None:
        """Keep `d`, defer it to the first allowed instant of a day with room, or skip
        it with the cap's reasons. Call `load` for its patient first."""
        if d.channel != _SMS or d.kind not in _CAPPED or d.patient_id is None:
            return
        key = (d.patient_id, d.to)
        kind, about = _KIND[d.kind], (d.entity_type, d.entity_id)
        found = self.history.get(key)
        if found:
            # Its own stored row is not a rival: re-planning must reach the same answer.
            others = [r for r in found if r.message_id != d.dedupe_key]
            _follow(d, kind, others, zone or policy.zone, policy, zone, about)
        if d.planned_at is None:
            d.status = "skipped"
            return
        self._remember(key, SmsRecord(d.planned_at, kind, d.dedupe_key, True, about))

    def _remember(self, key: tuple[int, str], record: SmsRecord) -> None:
        records = self.history.get(key)
        if records is None:
            self.history[key] = [record]
            return
        for n, r in enumerate(records):
            if r.message_id is not None and r.message_id == record.message_id:
                records[n] = record
                return
        records.append(record)


def _follow(d: Decision, kind, others, cap_zone, policy, zone, about) -> None:
    """Move `d` to where the caps let it go, or clear its time when nowhere."""
    if not others:
        return

    def window(at: dt.datetime) -> dt.datetime | None:
        return policy.earliest_allowed(Channel.SMS, at, d.not_after, zone)

    found = fit_sms_cap(
        kind, Channel.SMS, d.planned_at, others, cap_zone, d.not_after, window, about
    )
    if found.action is CapAction.ALLOW:
        return
    d.reasons = (*d.reasons, *found.reasons)
    d.planned_at = found.at if found.action is CapAction.DEFER else None
