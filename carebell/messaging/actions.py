"""The one writer of the outbox.

Every change to an outbox row — planned, cancelled, blocked, claimed, sent, retried,
delivered — goes through a function here, inside a transaction, and leaves a
MessageEvent saying why. Views, webhooks, the planner and the dispatcher call these
and never save outbox rows themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import Q

from carebell.core.channels import OPTED_OUT_CODE
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
    rows: Q, status: OutboxStatus, reasons: Sequence[Reason], now: dt.datetime, **extra
) -> int:
    """Move every still-pending row matching `rows` to `status`, with events."""
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
    entity_type: str, entity_ids: Iterable[int], reasons: Sequence[Reason], now: dt.datetime
) -> int:
    """Cancel pending messages about these entities (e.g. an appointment that moved),
    including combined messages that list one of them. Returns the count."""
    ids = list(entity_ids)
    about = Q(entity_type=entity_type, entity_id__in=ids) | Q(
        subjects__entity_type=entity_type, subjects__entity_id__in=ids
    )
    return _close_pending(about, OutboxStatus.CANCELLED, reasons, now)


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
    """`opt_in_address` at each of `site_ids`, the sites that share the sender."""
    with transaction.atomic():
        for site_id in sorted(set(site_ids)):
            _record_opt_out(site_id, address, channel, False, source=source, now=now)


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
            cancel_pending_for("appointment", [appointment.id], [why], now)
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
