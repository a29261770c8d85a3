"""The outbox: the one writer of messages.

Every change to an outbox row, its delivery attempts and its events — planned,
cancelled, blocked, claimed, sent, retried, delivered — goes through a function
here, inside a transaction (or as one statement), and leaves a MessageEvent saying why; every status
change obeys one rule, `core.vocab.can_move`. The planner, the dispatcher, the
webhooks, the two-way replies and the patient pages call these verbs and never save
outbox rows themselves:

- plan: `OutboxWriter` (bulk, what every planning path stores), `move_planned`,
  `close_replanned`, `queue_reply`, `queue_staff_email`, `queue_verification_code`
- start: `lock_due`, `lease`, `start_sending`, `insert_attempts`
- record: `record_outcomes` (a dispatched batch), `record_status` (a provider's report),
  `record_review_opened`
- close: `close_message`, `cancel_messages`, `cancel_pending_for`, `block_pending_to`
- defer: `defer_message`

The bulk SQL lies beneath, private: `_sql` (the dispatcher's set-based statements),
`_copy` (the planner's COPY) and `_report` (a provider's report, one statement on
PostgreSQL), each with one implementation per database.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Q

from carebell import events
from carebell.core.channels import RECIPIENT_BLOCKS, block_reason_for
from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import (
    PENDING_STATUSES,
    AttemptStatus,
    BlockReason,
    Channel,
    Kind,
    OutboxStatus,
    can_move,
)
from carebell.messaging.models import MessageEvent, OutboxMessage
from carebell.outbox import _report, _sql
from carebell.outbox._copy import OutboxWriter, is_capped
from carebell.outbox._sql import AttemptResult, NewAttempt, Outcome, Started, backend
from carebell.outbox._stored import reasons_json
from carebell.sql import is_row_id

log = logging.getLogger("carebell.outbox")

__all__ = [
    "AttemptResult",
    "Move",
    "NewAttempt",
    "OutboxWriter",
    "Outcome",
    "block_pending_to",
    "cancel_messages",
    "cancel_pending_for",
    "close_message",
    "close_replanned",
    "defer_message",
    "insert_attempts",
    "is_capped",
    "lease",
    "lock_due",
    "move_planned",
    "moves_from",
    "queue_reply",
    "queue_staff_email",
    "queue_verification_code",
    "reasons_json",
    "record_outcomes",
    "record_review_opened",
    "record_status",
    "reply_clauses",
    "start_sending",
]


def moves_from(new: OutboxStatus, among: Iterable[OutboxStatus] = OutboxStatus) -> list[str]:
    """The statuses (of `among`) a row may leave for `new`, by `can_move`: what a
    bulk statement's WHERE names, so SQL and Python keep the one rule."""
    return [s.value for s in among if can_move(s, new)]


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
                .filter(rows, status__in=moves_from(status, PENDING_STATUSES))
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
    kinds: Iterable[Kind] = (),
) -> int:
    """Cancel pending messages about these entities (e.g. an appointment that moved),
    including combined messages that list one of them; only those of `kinds` when
    given. `replanned`: the caller plans what still applies at once, so the rows give
    back their keys (see _close_pending). Returns the count."""
    ids = list(entity_ids)
    about = Q(entity_type=entity_type, entity_id__in=ids) | Q(
        subjects__entity_type=entity_type, subjects__entity_id__in=ids
    )
    if kinds:
        about &= Q(kind__in=list(kinds))
    return _close_pending(about, OutboxStatus.CANCELLED, reasons, now, release_key=replanned)


def cancel_messages(message_ids: Iterable[int], reasons: Sequence[Reason], now: dt.datetime) -> int:
    """Cancel (staff's "delete") pending messages by id; sent ones are never touched."""
    return _close_pending(Q(id__in=list(message_ids)), OutboxStatus.CANCELLED, reasons, now)


def block_pending_to(
    site_ids: Sequence[int], address: str, channel: Channel, why: Reason, now: dt.datetime
) -> int:
    """Block every pending message to `address` over `channel` at these sites (an
    opt-out: SPEC §3.5). Returns how many were blocked."""
    rows = Q(site_id__in=list(site_ids), to_address=address, channel=channel)
    return _close_pending(
        rows, OutboxStatus.BLOCKED, [why], now, block_reason=BlockReason.OPTED_OUT
    )


def record_review_opened(message: OutboxMessage, now: dt.datetime) -> bool:
    """Note, once, that the patient opened the review link of `message` (its status
    stays). Returns True the first time."""
    with transaction.atomic():
        if MessageEvent.objects.filter(message=message, note=Code.REVIEW_LINK_OPENED).exists():
            return False
        MessageEvent.objects.create(
            message=message, at=now, status=message.status, note=Code.REVIEW_LINK_OPENED
        )
    return True


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
    when something changed.

    It runs per callback, so it is one statement on PostgreSQL (in autocommit, or in
    the caller's transaction) and a few narrow ones on SQLite (`_report`): read the
    attempt, keep the report once, settle the attempt, move the message with its
    event and the source system's; no whole row is read or written."""
    target = OutboxStatus(status)
    recorded = _report.record(
        _report.Report(
            provider=provider,
            provider_message_id=provider_message_id,
            status=target.value,
            attempt_id=attempt_id if is_row_id(attempt_id) else None,
            error_code=error_code,
            received_at=now,
            effect=_REPORT_EFFECTS[target],
        )
    )
    if recorded is None or not recorded.kept:
        return False
    moved = recorded.moved
    if opt_out:  # a STOP-blocked number, a spam complaint or an email unsubscribe
        # Consent is the two-way room's; it blocks through this module again.
        from carebell.twoway.consent import opt_out_address

        if moved is not None:
            site_id, to_address, channel = moved.site_id, moved.to_address, moved.channel
        else:
            rows = OutboxMessage.objects.filter(id=recorded.message_id)
            site_id, to_address, channel = rows.values_list("site_id", "to_address", "channel")[0]
        opt_out_address(
            site_id,
            to_address,
            Channel(channel),
            source="provider_error",
            detail=error_code,
            now=now,
        )
    return moved is not None


#: Delivery reports the source system hears of (SPEC §9).
_REPORTED = frozenset({OutboxStatus.DELIVERED, OutboxStatus.UNDELIVERED, OutboxStatus.FAILED})
#: A report's status → its attempt's (anything else failed).
_SETTLED = {OutboxStatus.SENT: AttemptStatus.SENT, OutboxStatus.DELIVERED: AttemptStatus.DELIVERED}


#: What a report of each status does, worked out once from the one transition rule
#: (`can_move`): walking the statuses per callback cost it more CPU than its
#: statement's parameters.
_REPORT_EFFECTS = {
    target: _report.Effect(
        settles_as=_SETTLED.get(target, AttemptStatus.FAILED).value,
        moves_from=tuple(moves_from(target)),
        sent=target in (OutboxStatus.SENT, OutboxStatus.DELIVERED),
        final=target.is_final,
        event_type=f"message.{target}" if target in _REPORTED else "",
    )
    for target in OutboxStatus
}


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


_PENDING = [s.value for s in PENDING_STATUSES]
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
            .filter(id__in=[m.message_id for m in moves], status__in=_PENDING)
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
                events.append(
                    MessageEvent(
                        message_id=m.message_id,
                        at=now,
                        reasons=stored,
                        status=OutboxStatus.SCHEDULED,
                    )
                )
        MessageEvent.objects.bulk_create(events)
    return len(rows)


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
    values = _reply_values(site, to, kind, language=language, body=body, patient_id=patient_id,
                           entity=entity)  # fmt: skip
    return _queue(values, now, site=site)


def reply_clauses(
    after: str, site, to: str, kind: Kind, *, now: dt.datetime, language: str, body: str
) -> tuple[str, list] | None:
    """`queue_reply`'s message (to no patient or entity) as WITH clauses for the
    statement that stores its cause, written only if the clause `after` returns a row
    (see `_sql.queued_clauses`): an inbound HELP and its answer in one statement.
    PostgreSQL only; None elsewhere, where the caller queues the reply after."""
    if connection.vendor != "postgresql":
        return None
    values = _reply_values(site, to, kind, language=language, body=body)
    _columns, params = _sql.queued_row(_queued_at(values, now))
    return _sql.queued_clauses(after, params)


def _reply_values(site, to, kind, *, language, body, patient_id=None, entity=None) -> dict:
    entity_type, entity_id = entity or ("", None)
    return {
        "site_id": site.pk, "patient_id": patient_id, "to_address": to,
        "channel": Channel.SMS, "kind": kind, "priority": 0, "language": language,
        "entity_type": entity_type, "entity_id": entity_id, "body": body,
    }  # fmt: skip


def _queued_at(values: dict, now: dt.datetime) -> dict:
    values.update(planned_at=now, due_at=now, status=OutboxStatus.QUEUED, created_at=now,
                  updated_at=now)  # fmt: skip
    return values


def _queue(values: dict, now: dt.datetime, **related) -> OutboxMessage:
    """Store a message of `values` (by field attname), queued to go at once, with its
    event: one statement on PostgreSQL (see `_sql.queued_row`), as every inbound HELP
    or STOP answer does. Returns it as stored, with the `related` objects given
    (its site, its contact point) set on it."""
    columns, params = _sql.queued_row(_queued_at(values, now))
    message_id = backend().insert_queued(columns, params, now, OutboxStatus.QUEUED.value)
    message = _sql.queued_message(message_id, values)
    for name, obj in related.items():
        setattr(message, name, obj)
    return message


def queue_staff_email(
    site, to: str, subject: str, body: str, *, entity: tuple[str, int], now: dt.datetime
) -> OutboxMessage:
    """Queue a written email to staff (a department's notice, SPEC §5.3): to a
    department's address, about no patient's contact point, so no preference,
    consent or verification applies, and of a staff kind (`Kind.STAFF_NOTICE`), so
    it goes at once rather than waiting for the patients' email window. `entity`
    names what it is about (the staff notification)."""
    entity_type, entity_id = entity
    values = {
        "site_id": site.pk, "to_address": to, "channel": Channel.EMAIL,
        "kind": Kind.STAFF_NOTICE, "priority": 3, "entity_type": entity_type,
        "entity_id": entity_id, "subject": subject[:300], "body": body,
    }  # fmt: skip
    return _queue(values, now, site=site)


def queue_verification_code(
    site, point, channel: Channel, subject: str, body: str, *, now: dt.datetime
) -> OutboxMessage:
    """Queue a one-time code (SPEC §3.5) to contact point `point` over `channel`, to go
    at once: the person is waiting for it, so no window, cap or daily batch holds it
    (dispatch.checks.IMMEDIATE_KINDS), yet an opted-out number is still refused at
    send. Written by `carebell.people.verification`, which renders the text."""
    values = {
        "site_id": site.pk, "patient_id": point.contact.patient_id,
        "contact_id": point.contact_id, "contact_point_id": point.pk,
        "to_address": point.value, "channel": channel, "kind": Kind.VERIFICATION,
        "priority": 0, "language": point.contact.language, "subject": subject[:300],
        "body": body,
    }  # fmt: skip
    return _queue(values, now, site=site, contact_point=point)


# --- the dispatcher's bulk statements (see _sql) -------------------------------------


def lock_due(now: dt.datetime, limit: int) -> list[int]:
    """Lock up to `limit` due messages for the current transaction; their ids.
    Concurrent workers take disjoint rows without waiting for each other."""
    return backend().lock_due(now, limit)


def lease(ids: list[int], token: dt.datetime, now: dt.datetime) -> None:
    """Lease rows until `token` (their due time and lease expiry), which then also
    tells whether they are still this worker's (see `start_sending`)."""
    if ids:
        backend().lease(ids, token, now)


def start_sending(messages, due_at: dt.datetime, now: dt.datetime, token=None) -> set[int]:
    """Mark the messages (claimed rows: `id`, `attempts`, `resume_attempt`, rendered
    `subject`, `body`, `html_body`, `segments`) as sending until `due_at`, with their
    rendered text and next attempt number; returns their ids. With a `token`, only
    those whose lease still carries it and still `sending`: the others were claimed
    again by another worker after this one's lease ran out, or a status callback
    settled them meanwhile. (Without, the caller holds the rows' locks.)"""
    rows = [
        Started(
            m.id,
            m.attempts + (m.resume_attempt is None),
            m.subject,
            m.body,
            m.html_body,
            m.segments,
        )
        for m in messages
    ]
    if not rows:
        return set()
    ours = backend().start_sending(rows, due_at, now, token)
    for message in messages:
        if message.id in ours:
            message.attempts += message.resume_attempt is None
            message.status = OutboxStatus.SENDING
    return ours


def insert_attempts(messages, started_at: dt.datetime) -> dict[int, NewAttempt]:
    """Save attempt number `attempts` for each (message, provider name); returns the
    new attempts by message id. A number already taken is skipped, not an error."""
    return backend().insert_attempts(
        [(m.id, m.attempts, provider) for m, provider in messages], started_at
    )


_RECORDABLE = frozenset(
    [OutboxStatus.SENDING, *(s for s in OutboxStatus if can_move(OutboxStatus.SENDING, s))]
)


#: A one-time code's text, once it has left (or never will): the digits are kept only
#: while they may still have to be sent, never for staff, the API or a backup to read.
CODE_REMOVED = "(one-time code: removed once sent)"
_HANDED_OFF = frozenset({OutboxStatus.SENT, OutboxStatus.FAILED})


def _forget_codes(ids: list[int]) -> None:
    if ids:
        OutboxMessage.objects.filter(id__in=ids, kind=Kind.VERIFICATION).update(body=CODE_REMOVED)


def record_outcomes(
    now: dt.datetime, attempts: Sequence[AttemptResult], outcomes: Sequence[Outcome]
) -> set[int]:
    """Store the attempts' results (finishing those that are settled), and each
    outcome (with its event) on messages still `sending`; returns the ids of the
    messages moved. A message a status callback already moved on keeps its state,
    and an attempt a callback already settled is not made unsettled again."""
    if any(o.status not in _RECORDABLE for o in outcomes):
        raise ValueError("an outcome moves a sending message where it may not go")
    moved = backend().record_outcomes(now, attempts, outcomes)
    _forget_codes([o.id for o in outcomes if o.id in moved and o.status in _HANDED_OFF])
    failed = [o.id for o in outcomes if o.status == OutboxStatus.FAILED and o.id in moved]
    if failed:  # rare: a permanent refusal, or retries spent — the source system hears
        messages = OutboxMessage.objects.filter(id__in=failed).order_by("id")
        events.emit_many(((m.site_id, "message.failed", _report.payload(m)) for m in messages), now)
    return moved
