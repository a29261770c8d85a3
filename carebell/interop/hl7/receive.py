"""One message in, its ACKs out: the part the MLLP listener and the importer share.

`receive(raw, via=..., peer=...)`:
1. parses (pure) — unreadable input gets an AR, and its bytes are kept;
2. finds the sender's site and mapping (Hl7Sender) — an unknown sender gets an AR;
3. answers a resend (same sender, MSH-10 and segments) with the ACK it got the
   first time, changing nothing;
4. applies the message through the entry points and stores it with its outcome and
   ACK in ONE transaction, so the ACK is returned only once both are committed; an
   AE rolls the change back, then the message is stored with its reason.

Messages for one patient wait for each other (a lock per patient in this process,
the patient's row lock across processes); different patients go in parallel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import zoneinfo
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q, Subquery
from django.utils import timezone

from carebell.audit import trail
from carebell.interop.hl7 import ingest
from carebell.interop.hl7.acks import Result, acks_for
from carebell.interop.hl7.mapping import Mapping, read
from carebell.interop.hl7.models import Hl7Message, Hl7Sender, Outcome
from carebell.interop.hl7.parse import Header, Hl7Error, parse_message, split_segments
from carebell.planning import replan
from carebell.prepared import Prepared, execute_prepared, insert_statement

logger = logging.getLogger(__name__)
ACK_JOIN = b"\x1c"  # FS never appears inside a message: it separates stored ACKs


@dataclass(frozen=True, slots=True)
class Received:
    acks: list[bytes]
    outcome: str
    reason: str = ""
    message_type: str = ""
    control_id: str = ""
    duplicate: bool = False

    @property
    def code(self) -> str:
        """The application ACK code given (AA / AE / AR)."""
        return {Outcome.ERROR: "AE", Outcome.REJECTED: "AR"}.get(self.outcome, "AA")


def digest_of(raw: bytes) -> str:
    """The message's identity for resends: its segments, whatever ends them."""
    return hashlib.sha256(b"\r".join(split_segments(raw))).hexdigest()


def receive(
    raw: bytes,
    *,
    via: str,
    peer: str = "",
    now: dt.datetime | None = None,
    dry_run: bool = False,
    default_site=None,
) -> Received:
    now = now or timezone.now()
    digest = digest_of(raw)
    try:
        message = parse_message(raw)
    except Hl7Error as error:
        return _refused(raw, digest, None, error, via, peer, now, dry_run)
    header, feed = message.header, None
    senders = _SENDERS.objects(*_sender_key(header), *_message_key(header, digest))
    try:
        feed, mapping = _feed(header, senders, default_site, dry_run)
        zone = zoneinfo.ZoneInfo(mapping.time_zone or feed.site.time_zone)
        content = read(message, mapping, zone)
    except Hl7Error as error:
        return _refused(raw, digest, header, error, via, peer, now, dry_run, feed=feed)
    if dry_run:
        return Received([], Outcome.CHECKED, "", header.message_type, header.control_id)
    original = _original(header, digest, senders)
    duplicate = _answer_again(original, header, now)
    if duplicate is not None:
        return duplicate
    first_time = original is None  # no earlier row (a failed one) for _store to take
    with patient_lock((feed.site.pk, feed.source, content.patient.external_id)):
        try:
            return _apply_once_more_on_conflict(raw, digest, header, feed, content, via, peer,
                                                now, first_time)  # fmt: skip
        except IntegrityError:
            duplicate = _resent(header, digest, now)  # the same message on two connections
            if duplicate is not None:
                return duplicate
            problem = Hl7Error("The message conflicts with data carebell holds.", code="205")
            return _refused(raw, digest, header, problem, via, peer, now, False, feed=feed)
        except (Hl7Error, ValidationError) as error:
            problem = _as_error(error)
            return _refused(raw, digest, header, problem, via, peer, now, False, feed=feed)
        except DatabaseError:
            raise  # no ACK: the sender sends it again once the database is back
        except Exception as error:  # a bug must not lose the message: kept, answered AE
            logger.exception("HL7 %s %s failed", header.message_type[:24], type(error).__name__)
            problem = Hl7Error("carebell could not process this message.", code="207")
            return _refused(raw, digest, header, problem, via, peer, now, False, feed=feed)


def _apply_once_more_on_conflict(raw, digest, header, feed, content, via, peer, now, first_time):
    """Another process may create the same new patient or appointment at the same
    moment (the lock above is per process): the loser's transaction is rolled back,
    and applied again it finds the winner's rows (and, stored, any row the message
    was given meanwhile)."""
    try:
        return _apply(raw, digest, header, feed, content, via, peer, now, first_time)
    except IntegrityError:
        if _resent(header, digest, now) is not None:
            raise
        return _apply(raw, digest, header, feed, content, via, peer, now, False)


def _apply(raw, digest, header, feed, content, via, peer, now, first_time=False) -> Received:
    # A message's patient, contacts and visit: one replan. The message's row is
    # written with the change's audit entries, at the block's end (see _insert).
    with transaction.atomic(), replan.once_at_end():
        replan.read_for_block(feed.site)  # read with its delivery settings by _feed
        applied = ingest.apply(feed, content, now)
        outcome = Outcome.STALE if applied.stale else Outcome.APPLIED
        acks = acks_for(header, Result("AA", applied.summary if applied.stale else ""), now)
        _store(
            now, sender=header.sender[:140], control_id=header.control_id[:64], digest=digest,
            received_at=now, via=via, peer=peer[:200], message_type=header.message_type[:24],
            sent_at=content.sent_at, site=feed.site, raw=raw, outcome=outcome,
            reason=applied.summary, ack=ACK_JOIN.join(acks), first_time=first_time,
            with_it=ingest.mark_statements(feed, applied.marks),
        )  # fmt: skip
    return Received(acks, outcome, applied.summary, header.message_type, header.control_id)


_FAILED = (Outcome.ERROR, Outcome.REJECTED)


def _resent(header: Header, digest: str, now) -> Received | None:
    """The first answer to this message if it was taken (applied or stale). A message
    that failed is processed again when resent: its sender may have been set up, or
    the patient it named added, since."""
    return _answer_again(_original(header, digest), header, now)


def _original(header: Header, digest: str, senders: list | None = None) -> Hl7Message | None:
    """The stored row of this message (same sender, MSH-10 and segments), if any.
    `senders`: the sender rows read for it (`_SENDERS`), which say which row that
    is (or that there is none): it is read only then."""
    if senders:
        earlier = senders[0].earlier_id
        return None if earlier is None else _ORIGINAL_ROW.first(earlier)
    return _ORIGINAL.first(*_message_key(header, digest))


def _message_key(header: Header, digest: str) -> tuple[str, str, str]:
    return header.sender[:140], header.control_id[:64], digest


def _stored(sender, control_id, digest):
    return Hl7Message.objects.filter(sender=sender, control_id=control_id, digest=digest)


_ORIGINAL = Prepared(
    lambda sender, control_id, digest: _stored(sender, control_id, digest)
    .only("ack", "outcome", "reason").order_by("pk")[:1],
    "\x00sender", "\x00control", "\x00digest",
)  # fmt: skip
_ORIGINAL_ROW = Prepared(
    lambda pk: Hl7Message.objects.filter(pk=pk).only("ack", "outcome", "reason"), -7_100_003
)


def _answer_again(original: Hl7Message | None, header: Header, now) -> Received | None:
    if original is None or original.outcome in _FAILED:
        return None
    Hl7Message.objects.filter(pk=original.pk).update(resent=F("resent") + 1, last_resent_at=now)
    acks = [a for a in bytes(original.ack).split(ACK_JOIN) if a]
    return Received(acks, original.outcome, original.reason, header.message_type,
                    header.control_id, duplicate=True)  # fmt: skip


def _store(now, *, sender: str, control_id: str, digest: str, first_time=False, with_it=(),
           **fields):  # fmt: skip
    """Store a message with its outcome; a message that failed before and was sent
    again takes its earlier row, which keeps its earlier reason and counts the resend.
    `first_time`: the caller looked in this message's processing and found no row (one
    stored since by another connection makes the insert fail: see receive).
    `with_it`: statements (SQL, parameters) that go with the message (the watermarks
    it moves on), run in the same statement as its new row on PostgreSQL."""
    with transaction.atomic(savepoint=False):
        earlier = None
        if control_id and not first_time:
            earlier = (
                Hl7Message.objects.select_for_update()
                .filter(sender=sender, control_id=control_id, digest=digest, outcome__in=_FAILED)
                .first()
            )
        if earlier is None:
            _insert(with_it, sender=sender, control_id=control_id, digest=digest, **fields)
            return
        _run(with_it)
        fields.pop("received_at")
        fields["reason"] = f"{fields['reason']} (before: {earlier.reason})"[:2000]
        Hl7Message.objects.filter(pk=earlier.pk).update(
            **fields, resent=F("resent") + 1, last_resent_at=now
        )


def _insert(with_it, **fields) -> None:
    """The message's new row, as Hl7Message.objects.create would write it, by a
    prepared statement, with `with_it`: alongside the change's audit entries
    (trail.alongside), on PostgreSQL one statement at the end of the message's block,
    which nothing before then reads; outside a change (a refused message), at once."""
    for sql, params in (*with_it, insert_statement([Hl7Message(**fields)])):
        trail.alongside(sql, params)


def _run(statements) -> None:
    for sql, params in statements:
        with execute_prepared(sql, params):
            pass


def _refused(raw, digest, header, error: Hl7Error, via, peer, now, dry_run, feed=None):
    """An AE or AR: stored with its reason (never silently lost), answered."""
    outcome = Outcome.REJECTED if error.ack == "AR" else Outcome.ERROR
    header = header or _partial_header(raw)
    result = Result(error.ack, error.text, error.code, error.where)
    acks = acks_for(header, result, now)
    if dry_run:
        return Received(acks, outcome, error.text, _type(header), _control(header))
    if header is not None and header.control_id:
        duplicate = _resent(header, digest, now)
        if duplicate is not None:
            return duplicate
    try:
        _store(
            now, sender=header.sender[:140] if header else "", control_id=_control(header)[:64],
            digest=digest, received_at=now, via=via, peer=peer[:200],
            message_type=_type(header)[:24], site=feed.site if feed else None, raw=raw,
            outcome=outcome, reason=error.text[:2000], ack=ACK_JOIN.join(acks),
        )  # fmt: skip
    except IntegrityError:
        duplicate = _resent(header, digest, now)
        if duplicate is not None:
            return duplicate
        raise
    return Received(acks, outcome, error.text, _type(header), _control(header))


def _type(header) -> str:
    return header.message_type if header else ""


def _control(header) -> str:
    return header.control_id if header else ""


def _as_error(error: Exception) -> Hl7Error:
    if isinstance(error, Hl7Error):
        return error
    messages = getattr(error, "message_dict", None)
    if messages:
        text = "; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items())
    else:
        text = " ".join(getattr(error, "messages", [str(error)]))
    return Hl7Error(f"Refused by carebell: {text}"[:500], code="207")


def _partial_header(raw: bytes) -> Header | None:
    """What can be read of MSH in a message that did not parse, so that even its AR
    names its MSH-10 and goes back to its sender."""
    from carebell.interop.hl7.parse import read_header

    segments = split_segments(raw.lstrip(b"\x0b"))
    try:
        sep, enc, msh = read_header(segments[0]) if segments else (None, None, None)
    except Hl7Error:
        return None
    if sep is None:
        return None

    def f(n: int, comp: int = 1) -> str:
        if n - 1 >= len(msh):
            return ""
        parts = msh[n - 1].split(enc[1])[0].split(enc[0])
        return parts[comp - 1].strip() if comp <= len(parts) else ""

    return Header(sep, enc, f(3), f(4), f(5), f(6), f(7), f(9), f(9, 2), f(9, 3), f(10),
                  f(11), f(12), f(15).upper(), f(16).upper(), f(18))  # fmt: skip


# Senders ----------------------------------------------------------------------------


def _sender_key(header: Header) -> tuple[str, str]:
    return header.sending_application[:64], header.sending_facility[:64]


def _feed(header: Header, rows: list, default_site, dry_run: bool) -> tuple[ingest.Feed, Mapping]:
    """The feed of the sender rows `rows` (`_SENDERS`) that best match the message."""
    app, facility = _sender_key(header)
    # The most specific row: application and facility, then either, then the catch-all.
    best = max(rows, key=lambda r: (bool(r.sending_application), bool(r.sending_facility)),
               default=None)  # fmt: skip
    if best is None and default_site is not None:
        best = Hl7Sender(sending_application=app, sending_facility=facility, site=default_site)
        if not dry_run:
            best.save()
    if best is None:
        raise Hl7Error(
            f"No site takes messages from {header.sender[:80]}: add it under HL7 senders.",
            ack="AR",
            code="204",
            where="MSH-3",
        )
    try:
        mapping = Mapping.from_dict(best.mapping)
    except (ValueError, TypeError) as error:
        raise Hl7Error(f"The mapping of sender {header.sender[:80]} is wrong: {error}.",
                       ack="AR") from None  # fmt: skip
    source = best.patient_source or f"hl7:{facility or app}"[:32]
    return ingest.Feed(best.site, source, f"hl7:{header.sender}"[:80]), mapping


#: The senders a message may be from, each with the id of this message's stored row
#: (a resend, or one that failed before), if any: one round trip for both questions.
_SENDERS = Prepared(
    lambda app, facility, sender, control_id, digest: Hl7Sender.objects.select_related(
        "site__delivery"
    ).filter(
        Q(sending_application__in=(app, "")) & Q(sending_facility__in=(facility, "")),
        enabled=True,
    ).annotate(
        earlier_id=Subquery(_stored(sender, control_id, digest).order_by("pk").values("pk")[:1])
    ),
    "\x00application", "\x00facility", "\x00sender", "\x00control", "\x00digest",
)  # fmt: skip


# One patient at a time --------------------------------------------------------------

_locks: dict[tuple, list] = {}
_locks_guard = threading.Lock()


@contextmanager
def patient_lock(key: tuple):
    """Serialise this process's work on one patient; free the lock when unused."""
    with _locks_guard:
        entry = _locks.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _locks_guard:
            entry[1] -= 1
            if entry[1] == 0:
                _locks.pop(key, None)
