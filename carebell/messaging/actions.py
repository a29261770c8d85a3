"""The one writer of the outbox.

Every change to an outbox row — planned, cancelled, blocked, claimed, sent, retried,
delivered — goes through a function here, inside a transaction, and leaves a
MessageEvent saying why. Views, webhooks, the planner and the dispatcher call these
and never save outbox rows themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from django.db import transaction
from django.db.models import Q

from carebell.core.channels import OPTED_OUT_CODE, RECIPIENT_BLOCKS, block_reason_for
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import (
    AppointmentStatus,
    AttemptStatus,
    BlockReason,
    Channel,
    Kind,
    OutboxStatus,
    can_move,
)
from carebell.messaging.models import (
    PENDING,
    DeliveryAttempt,
    MessageEvent,
    OutboxMessage,
    ProviderEvent,
)
from carebell.people.models import ContactPoint, OptOutEvent

log = logging.getLogger("carebell.messaging")

_OPT_OUT_FLAG = {
    Channel.SMS: "opted_out_sms",
    Channel.CALL: "opted_out_call",
    Channel.EMAIL: "opted_out_email",
}


def reasons_json(reasons: Iterable[Reason]) -> list[dict]:
    """Reasons as stored on outbox rows and events: code plus parameters."""
    return [{"code": r.code.value, **{k: r.param(k) for k, _ in r.params}} for r in reasons]


def add_planned(messages: Sequence[OutboxMessage]) -> int:
    """Insert planned messages; a dedupe key already present is left alone, so
    re-planning creates nothing new. Returns how many rows were offered."""
    OutboxMessage.objects.bulk_create(messages, batch_size=1000, ignore_conflicts=True)
    return len(messages)


def _close_pending(
    rows: Q,
    status: OutboxStatus,
    reasons: Sequence[Reason],
    now: dt.datetime,
    *,
    release_key: bool = False,
    **extra,
) -> int:
    """Move every still-pending row matching `rows` to `status`, with events.

    A row closed because it was planned again (`release_key`), or blocked for a
    reason about its recipient (RECIPIENT_BLOCKS), gives back its occurrence key
    (`dedupe_key` becomes NULL, which never conflicts): the planner judges the
    recipient again on every pass, so when the contact may receive the occurrence
    again it is planned afresh, as a new row, instead of staying blocked for good
    (status only moves forward). Every other ending — sent, deleted by staff,
    cancelled by the patient, capped, a restricted word, a deadline passed — keeps
    the key, so no pass plans that occurrence again."""
    if release_key or extra.get("block_reason") in RECIPIENT_BLOCKS:
        extra["dedupe_key"] = None
    with transaction.atomic():
        ids = sorted(
            set(
                OutboxMessage.objects.select_for_update(of=("self",))
                .filter(rows, status__in=PENDING)
                .values_list("id", flat=True)
            )
        )
        if not ids:
            return 0
        stored = reasons_json(reasons)
        OutboxMessage.objects.filter(id__in=ids).update(
            status=status, reasons=stored, updated_at=now, finished_at=now, **extra
        )
        MessageEvent.objects.bulk_create(
            [MessageEvent(message_id=i, at=now, status=status, reasons=stored) for i in ids],
            batch_size=1000,
        )
    return len(ids)


def cancel_pending_for(
    entity_type: str,
    entity_ids: Iterable[int],
    reasons: Sequence[Reason],
    now: dt.datetime,
    *,
    replanned: bool = False,
) -> int:
    """Cancel pending messages about these entities (e.g. an appointment that moved),
    including combined messages that list one of them. `replanned`: the caller plans
    what still applies at once, so the rows give back their keys (see _close_pending).
    Returns the count."""
    ids = list(entity_ids)
    about = Q(entity_type=entity_type, entity_id__in=ids) | Q(
        subjects__entity_type=entity_type, subjects__entity_id__in=ids
    )
    return _close_pending(about, OutboxStatus.CANCELLED, reasons, now, release_key=replanned)


def cancel_messages(message_ids: Iterable[int], reasons: Sequence[Reason], now: dt.datetime) -> int:
    """Cancel (staff's "delete") pending messages by id; sent ones are never touched."""
    return _close_pending(Q(id__in=list(message_ids)), OutboxStatus.CANCELLED, reasons, now)


def block_messages(
    message_ids: Iterable[int], block: BlockReason, reasons: Sequence[Reason], now: dt.datetime
) -> int:
    return _close_pending(
        Q(id__in=list(message_ids)), OutboxStatus.BLOCKED, reasons, now, block_reason=block
    )


def opt_out_address(
    site_id: int, address: str, channel: Channel, *, source: str, now: dt.datetime, detail: str = ""
) -> int:
    """Opt `address` out of `channel` at one site, at once (SPEC §3.5): every contact
    point with that value there is flagged, the event is kept, and pending messages
    to it are blocked. Returns how many pending messages were blocked."""
    return opt_out_address_at([site_id], address, channel, source=source, now=now, detail=detail)


def opt_out_address_at(
    site_ids: Sequence[int],
    address: str,
    channel: Channel,
    *,
    source: str,
    now: dt.datetime,
    detail: str = "",
) -> int:
    """`opt_out_address` at each of `site_ids` in one transaction: a STOP sent to a
    number several sites of one organization send from stops all of them."""
    site_ids = sorted(set(site_ids))
    with transaction.atomic():
        for site_id in site_ids:
            _record_opt_out(site_id, address, channel, True, source=source, now=now, detail=detail)
        code = OPTED_OUT_CODE[channel]
        rows = Q(site_id__in=site_ids, to_address=address, channel=channel)
        return _close_pending(
            rows, OutboxStatus.BLOCKED, [reason(code)], now, block_reason=BlockReason.OPTED_OUT
        )


def opt_in_address(
    site_id: int, address: str, channel: Channel, *, source: str, now: dt.datetime
) -> None:
    """Undo an opt-out (START, UNSTOP): the number may receive that channel again."""
    opt_in_address_at([site_id], address, channel, source=source, now=now)


def opt_in_address_at(
    site_ids: Sequence[int], address: str, channel: Channel, *, source: str, now: dt.datetime
) -> None:
    """`opt_in_address` at each of `site_ids`, the sites that share the sender.

    The number's patients are planned again in the same transaction: what the
    opt-out blocked gave back its occurrence keys, so every message still due is
    planned afresh as a new row (status only moves forward; the blocked rows stay as
    history) and `carebell explain` shows what the outbox now holds."""
    from carebell.messaging.planning.replan import replan_patients
    from carebell.sites.models import Site

    with transaction.atomic():
        for site_id in sorted(set(site_ids)):
            _record_opt_out(site_id, address, channel, False, source=source, now=now)
        for site in Site.objects.filter(id__in=sorted(set(site_ids))).order_by("id"):
            patients = ContactPoint.objects.filter(value=address, contact__patient__site=site)
            patient_ids = set(patients.values_list("contact__patient_id", flat=True))
            replan_patients(site, patient_ids, now=now, why=reason(Code.RECIPIENT_CHANGED))


def _record_opt_out(
    site_id, address, channel, opted_out: bool, *, source: str, now, detail: str = ""
) -> None:
    ContactPoint.objects.filter(value=address, contact__patient__site_id=site_id).update(
        **{_OPT_OUT_FLAG[channel]: opted_out}
    )
    OptOutEvent.objects.create(
        site_id=site_id, address=address, channel=channel, opted_out=opted_out,
        source=source, detail=detail, recorded_at=now,
    )  # fmt: skip


def record_status(
    provider: str,
    provider_message_id: str,
    status: str,
    *,
    now: dt.datetime,
    attempt_id: int | None = None,
    error_code: str = "",
    opt_out: bool = False,
) -> bool:
    """Apply a provider's delivery report once. Duplicates (same message id and
    status) and backward moves change nothing. A report for an attempt still
    unsettled (its answer was lost, or its worker died mid-send) settles it: the
    provider has the message, so the dispatcher sends nothing again. Returns True
    when something changed."""
    with transaction.atomic():
        attempt = _attempt_for(provider, provider_message_id, attempt_id)
        if attempt is None:
            return False
        _, created = ProviderEvent.objects.get_or_create(
            provider=provider,
            provider_message_id=provider_message_id,
            status=status,
            defaults={"attempt": attempt, "error_code": error_code, "received_at": now},
        )
        if not created:
            return False
        if attempt.finished_at is None:
            _settle_attempt(attempt, status, now)
        message = OutboxMessage.objects.select_for_update().get(id=attempt.message_id)
        moved = _advance(message, OutboxStatus(status), now, attempt, error_code)
    if opt_out:  # a STOP-blocked number, a spam complaint or an email unsubscribe
        opt_out_address(
            message.site_id,
            message.to_address,
            Channel(message.channel),
            source="provider_error",
            detail=error_code,
            now=now,
        )
    return moved


def _attempt_for(provider: str, provider_message_id: str, attempt_id: int | None):
    attempts = DeliveryAttempt.objects.filter(provider=provider)
    if attempt_id is not None:
        attempt = attempts.filter(id=attempt_id).first()
        if attempt is not None and provider_message_id and not attempt.provider_message_id:
            # The callback beat the dispatcher's commit (or the worker died): the
            # report itself tells us the provider accepted this attempt.
            attempt.provider_message_id = provider_message_id
            attempt.save(update_fields=["provider_message_id"])
        if attempt is not None:
            return attempt
    if not provider_message_id:
        return None
    return attempts.filter(provider_message_id=provider_message_id).first()


def _settle_attempt(attempt: DeliveryAttempt, status: str, now: dt.datetime) -> None:
    reported = {"sent": AttemptStatus.SENT, "delivered": AttemptStatus.DELIVERED}
    attempt.status = reported.get(status, AttemptStatus.FAILED)
    attempt.finished_at = now
    attempt.save(update_fields=["status", "finished_at"])


def _advance(
    message: OutboxMessage,
    status: OutboxStatus,
    now: dt.datetime,
    attempt: DeliveryAttempt,
    error_code: str,
) -> bool:
    current = OutboxStatus(message.status)
    if not can_move(current, status):
        return False
    message.status = status
    message.updated_at = now
    message.provider_message_id = message.provider_message_id or attempt.provider_message_id
    message.provider = message.provider or attempt.provider
    if status in (OutboxStatus.SENT, OutboxStatus.DELIVERED) and message.sent_at is None:
        message.sent_at = now
    if status.is_final:
        message.finished_at = now
        message.lease_expires_at = None
    if error_code:
        message.error_code = error_code[:32]
    message.save()
    MessageEvent.objects.create(message=message, at=now, status=status, note=error_code)
    return True


def close_message(
    message_id: int,
    status: OutboxStatus,
    reasons: Sequence[Reason],
    now: dt.datetime,
    *,
    block_reason: BlockReason | None = None,
) -> bool:
    """End one message the dispatcher found must not go (cancelled or blocked).
    Works on a message between attempts too; never on one a provider accepted."""
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(id=message_id)
        if not can_move(OutboxStatus(message.status), status):
            return False
        stored = reasons_json(reasons)
        message.status = status
        message.block_reason = block_reason or ""
        if block_reason in RECIPIENT_BLOCKS:  # see _close_pending
            message.dedupe_key = None
        message.reasons = [*message.reasons, *stored]
        message.finished_at = message.updated_at = now
        message.lease_expires_at = None
        message.save()
        MessageEvent.objects.create(message=message, at=now, status=status, reasons=stored)
    return True


def defer_message(
    message_id: int, to: dt.datetime, reasons: Sequence[Reason], now: dt.datetime
) -> None:
    """Move a message to a later allowed time (it keeps its status)."""
    stored = reasons_json(reasons)
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(id=message_id)
        message.due_at = message.planned_at = to
        message.lease_expires_at = None
        message.reasons = [*message.reasons, *stored]
        message.updated_at = now
        message.save()
        MessageEvent.objects.create(message=message, at=now, status=message.status, reasons=stored)


class Move(NamedTuple):
    """A pending row planned again: its new time, and its recipient and language as
    the new plan has them (a shared number may pass to another contact)."""

    message_id: int
    planned_at: dt.datetime
    contact_id: int | None
    contact_point_id: int | None
    language: str
    entity_name: str


_CHUNK = 1000  # ids per statement (SQLite binds at most 32,766 parameters)


def close_replanned(closures: Sequence[tuple[int, Sequence[Reason]]], now: dt.datetime) -> int:
    """Close pending rows a replan no longer plans, each with its reasons: blocked
    when one is about the recipient (`core.channels.block_reason_for`), cancelled
    otherwise; each gives back its occurrence key (see _close_pending). Rows with
    the same reasons go in one statement. Returns how many were closed."""
    by_reasons: dict[tuple[Reason, ...], list[int]] = defaultdict(list)
    for message_id, reasons in closures:
        by_reasons[tuple(reasons)].append(message_id)
    closed = 0
    for reasons, ids in by_reasons.items():
        block = block_reason_for(reasons)
        status = OutboxStatus.CANCELLED if block is None else OutboxStatus.BLOCKED
        extra = {} if block is None else {"block_reason": block}
        for start in range(0, len(ids), _CHUNK):
            rows = Q(id__in=ids[start : start + _CHUNK])
            closed += _close_pending(rows, status, reasons, now, release_key=True, **extra)
    return closed


def move_planned(moves: Sequence[Move], reasons: Sequence[Reason], now: dt.datetime) -> int:
    """Give pending rows the time, recipient and language a replan found, in bulk,
    with an event each; rows no longer pending are left alone. Returns the count."""
    moved = 0
    for start in range(0, len(moves), _CHUNK):
        moved += _move_chunk(moves[start : start + _CHUNK], reasons, now)
    return moved


def _move_chunk(moves: Sequence[Move], reasons: Sequence[Reason], now: dt.datetime) -> int:
    with transaction.atomic():
        pending = set(
            OutboxMessage.objects.select_for_update()
            .filter(id__in=[m.message_id for m in moves], status__in=PENDING)
            .values_list("id", flat=True)
        )
        rows = [
            OutboxMessage(
                id=m.message_id, planned_at=m.planned_at, due_at=m.planned_at,
                contact_id=m.contact_id, contact_point_id=m.contact_point_id,
                language=m.language, entity_name=m.entity_name, lease_expires_at=None,
                updated_at=now,
            )
            for m in moves
            if m.message_id in pending
        ]  # fmt: skip
        fields = ["planned_at", "due_at", "contact_id", "contact_point_id", "language",
                  "entity_name", "lease_expires_at", "updated_at"]  # fmt: skip
        OutboxMessage.objects.bulk_update(rows, fields)
        events = []
        for m in moves:
            if m.message_id in pending:
                stored = reasons_json([*reasons, reason(Code.REPLANNED_TO, at=m.planned_at)])
                events.append(MessageEvent(message_id=m.message_id, at=now, reasons=stored,
                                           status=OutboxStatus.SCHEDULED))  # fmt: skip
        MessageEvent.objects.bulk_create(events)
    return len(rows)


def appointment_saved(appointment, previous, *, now: dt.datetime) -> int:
    """Call after saving `appointment` (`previous`: the row as it was, None for a new
    one): replans its messages when the change matters to them (time, status,
    location, patient). Returns rows planned."""
    from carebell.core.timing import AppointmentFacts, change_reason

    if previous is None:
        return appointment_changed(appointment, now=now, why=None)

    def facts(a) -> AppointmentFacts:
        return AppointmentFacts(
            a.id, a.patient_id, a.site_id, a.starts_at, AppointmentStatus(a.status)
        )

    why = change_reason(facts(previous), facts(appointment))
    if why is None and previous.location_code == appointment.location_code:
        return 0
    return appointment_changed(appointment, now=now, why=why or reason(Code.APPOINTMENT_MOVED))


def appointment_changed(appointment, *, now: dt.datetime, why: Reason | None) -> int:
    """Replan an appointment's messages in the transaction of its change (SPEC §5.1):
    pending ones are cancelled with `why` (None for a new appointment), and what now
    applies is planned again, for its siblings too when a combined message listed
    them. Returns rows planned."""
    from carebell.messaging.models import AutomatedMessage
    from carebell.messaging.planning.appointments import plan_site_appointments
    from carebell.messaging.planning.writer import OutboxWriter
    from carebell.messaging.policies import PolicyCache

    with transaction.atomic():
        combined_with = list(
            OutboxMessage.objects.filter(
                subjects__entity_type="appointment",
                subjects__entity_id=appointment.id,
                status__in=PENDING,
            ).values_list("patient_id", flat=True)
        )
        if why is not None:
            # Keys given back: an occurrence that still applies (the same time at a new
            # location, a time moved back) is planned again below.
            cancel_pending_for("appointment", [appointment.id], [why], now, replanned=True)
        rules = list(AutomatedMessage.objects.filter(site_id=appointment.site_id, enabled=True))
        if not rules or not AppointmentStatus(appointment.status).is_open:
            return 0
        site = appointment.site
        policy = PolicyCache().for_site(site)
        day = policy.local_date(appointment.starts_at)
        writer = OutboxWriter(now)
        for decision in plan_site_appointments(
            site,
            rules,
            policy,
            now,
            policy.local_instant(day + dt.timedelta(days=1), dt.time(0)),
            start=policy.local_instant(day, dt.time(0)),
            patient_ids=sorted({appointment.patient_id, *[p for p in combined_with if p]}),
        ):
            writer.store(decision)  # a text the SMS caps keep back is stored as blocked
        writer.flush()
        return writer.offered


def queue_reply(
    site,
    to: str,
    kind: Kind,
    *,
    now: dt.datetime,
    language: str = "en",
    body: str = "",
    patient_id: int | None = None,
    entity: tuple[str, int] | None = None,
) -> OutboxMessage:
    """Queue an SMS answering the contact's own message, to go at once (replies are
    exempt from windows and caps; SPEC §4). Without `body`, the kind's template is
    rendered at send time."""
    entity_type, entity_id = entity or ("", None)
    message = OutboxMessage.objects.create(
        site=site,
        patient_id=patient_id,
        to_address=to,
        channel=Channel.SMS,
        kind=kind,
        priority=0,
        language=language,
        entity_type=entity_type,
        entity_id=entity_id,
        planned_at=now,
        due_at=now,
        status=OutboxStatus.QUEUED,
        body=body,
        created_at=now,
        updated_at=now,
    )
    MessageEvent.objects.create(message=message, at=now, status=OutboxStatus.QUEUED)
    return message


def queue_staff_email(
    site, to: str, subject: str, body: str, *, entity: tuple[str, int], now: dt.datetime
) -> OutboxMessage:
    """Queue a written email to staff (a department's notice, SPEC §5.3): to a
    department's address, about no patient's contact point, so no preference,
    consent or verification applies; it goes inside the site's email window like
    any notice. `entity` names what it is about (the staff notification)."""
    entity_type, entity_id = entity
    message = OutboxMessage.objects.create(
        site=site, to_address=to, channel=Channel.EMAIL, kind=Kind.GENERAL, priority=3,
        entity_type=entity_type, entity_id=entity_id, planned_at=now, due_at=now,
        status=OutboxStatus.QUEUED, subject=subject[:300], body=body, created_at=now,
        updated_at=now,
    )  # fmt: skip
    MessageEvent.objects.create(message=message, at=now, status=OutboxStatus.QUEUED)
    return message


def fill_changed(fill, *, now: dt.datetime) -> int:
    """A fill moved on: once picked up or returned to stock, its pending ready notices
    and pickup reminders stop, in the transaction of the change (SPEC §5.4). The next
    planner pass plans what now applies (a pickup confirmation, a review request)."""
    stopped = {"picked_up": Code.PICKED_UP, "returned_to_stock": Code.RETURNED_TO_STOCK}
    code = stopped.get(fill.step)
    if code is None:
        return 0
    with transaction.atomic():
        rows = Q(entity_type="fill", entity_id=fill.id) | Q(
            subjects__entity_type="fill", subjects__entity_id=fill.id
        )
        rows &= Q(kind__in=[Kind.RX_READY, Kind.RX_PICKUP_REMINDER])
        return _close_pending(rows, OutboxStatus.CANCELLED, [reason(code)], now)
