"""Writing the audit log (SPEC §10): who saw or changed what, and where.

Entries name objects by type and id, never by a person's name, so the log itself
holds no patient data beyond what ids point to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.prepared import execute_prepared, execute_together, insert
from carebell.sql import insert_new

# How to find the site of an object, for the models that do not hold it directly.
_SITE_PATHS = (
    ("site_id",),
    ("patient", "site_id"),
    ("contact", "patient", "site_id"),
    ("prescription", "site_id"),
    ("appointment", "site_id"),
    ("message", "site_id"),
)


def site_id_of(obj: object) -> int | None:
    """The id of the site `obj` belongs to, or None for objects outside any site."""
    if obj.__class__.__name__ == "Site":
        return obj.pk
    for path in _SITE_PATHS:
        value = obj
        for name in path:
            value = getattr(value, name, None)
            if value is None:
                break
        if isinstance(value, int):
            return value
    return None


#: Inside `batched`: the entries of the block, and the statements that go with
#: their INSERT (`alongside`), written at its end.
_BATCH: ContextVar[_Batch | None] = ContextVar("carebell_audit_batch", default=None)


@dataclass(slots=True)
class _Batch:
    events: list[AuditEvent] = field(default_factory=list)
    alongside: list[tuple[str, Sequence]] = field(default_factory=list)


@contextmanager
def batched() -> Iterator[None]:
    """Write the entries recorded in the block in one INSERT at its end (a message or
    a request that saves a patient, a contact and a number). Use it inside the
    change's transaction: the entries commit with it, and an error in the block
    writes none — a block inside another adds its entries to the outer one's, and
    takes them back if it fails (its savepoint, if any, undid their change).
    Entries recorded inside have no id until the outermost block ends."""
    outer = _BATCH.get()
    if outer is not None:
        kept, kept_alongside = len(outer.events), len(outer.alongside)
        try:
            yield
        except BaseException:
            del outer.events[kept:], outer.alongside[kept_alongside:]
            raise
        return
    batch = _Batch()
    token = _BATCH.set(batch)
    try:
        yield
    finally:
        _BATCH.reset(token)
    _write(batch)


def alongside(statement: str, params: Sequence) -> None:
    """Run the data-modifying `statement` (prepared, as `execute_prepared` runs it)
    with the entries of the enclosing `batched` block, as their INSERT's leading
    WITH clause on PostgreSQL (`prepared.insert`'s `ahead`): one round trip instead
    of two. Outside a block it runs at once. Inside one it runs at the block's end,
    in the same transaction, or not at all if the block fails: only for a write
    that nothing reads before then (an API call's stored answer)."""
    batch = _BATCH.get()
    if batch is None:
        with execute_prepared(statement, params):
            return
    batch.alongside.append((statement, params))


def _write(batch: _Batch) -> None:
    events, ahead = batch.events, batch.alongside
    if events and len(events) <= FEW:
        # A request's or a feed message's few: one prepared INSERT.
        insert(events, ahead=ahead)
        return
    if ahead:
        with execute_together(ahead):
            pass
    if events:
        insert_new(AuditEvent, events)  # an import's batch: by COPY on PostgreSQL


#: Up to this many entries, a batch is written by one prepared INSERT (prepared once
#: per count); more (an import's) take insert_new.
FEW = 16


def record(
    actor,
    action: str,
    obj: object | None = None,
    *,
    object_type: str = "",
    object_id: str = "",
    site_id: int | None = None,
    detail: dict | None = None,
    at: dt.datetime | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Append one entry. `actor` is a user, or None with `detail["system"]` (or
    `actor_label`) saying which part of carebell, or who, acted."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        site_id = site_id if site_id is not None else site_id_of(obj)
    user = actor if getattr(actor, "is_authenticated", False) else None
    label = user.get_username() if user is not None else ""
    label = label or actor_label or (detail or {}).get("system", "system")
    event = AuditEvent(
        at=at or timezone.now(),
        actor=user,
        actor_label=label[:100],
        site_id=site_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail=detail or {},
    )
    batch = _BATCH.get()
    if batch is None:
        _insert(event)
    else:
        batch.events.append(event)
    return event


def _insert(event: AuditEvent) -> None:
    """Write `event` as `event.save(force_insert=True)` writes it, in one prepared
    INSERT returning its id. An entry goes with every API call, and Model.save (its
    signals, the insert query it compiles each time) was a fifth of a read's CPU; no
    signal listens to AuditEvent, and its append-only rule holds (a new entry has no
    id)."""
    if event.pk is not None:
        raise PermissionError("The audit log is append-only.")
    insert([event])


_NOT_COMPARED = frozenset({"id", "created_at", "updated_at"})


def record_save(
    by, source: str, obj, previous, now: dt.datetime, *, site_id: int | None = None
) -> AuditEvent:
    """Audit a create (`previous` None) or change of `obj` by an entry point: the
    names of the fields that changed, never their values (they are patient data).
    `by` is the staff member, or None with `source` naming the feed or import.
    `site_id`, when the caller knows it, spares reading it through `obj`'s relations."""
    names = [f.attname for f in obj._meta.concrete_fields if f.attname not in _NOT_COMPARED]
    if previous is not None:
        names = [n for n in names if getattr(obj, n) != getattr(previous, n)]
    detail = {"fields": names} if by is not None else {"fields": names, "system": source}
    action = "create" if previous is None else "change"
    return record(by, action, obj, detail=detail, at=now, site_id=site_id)


def record_saves(by, source: str, pairs, now: dt.datetime, *, site_id: int | None = None):
    """`record_save` for many (object as saved, the row as it was or None) pairs, in
    one INSERT (or in the enclosing `batched` block's). The same entries, built with
    what they share worked out once: an import's batch audits tens of thousands."""
    user = by if getattr(by, "is_authenticated", False) else None
    label = (user.get_username() if user is not None else "") or (
        source if by is None else "system"
    )  # as `record` labels what record_save gives it
    compared: dict[type, list[str]] = {}
    with batched():
        events = _BATCH.get().events
        for obj, previous in pairs:
            names = compared.get(type(obj))
            if names is None:
                names = compared[type(obj)] = [
                    f.attname for f in obj._meta.concrete_fields if f.attname not in _NOT_COMPARED
                ]
            if previous is not None:
                names = [n for n in names if getattr(obj, n) != getattr(previous, n)]
            detail = {"fields": names} if by is not None else {"fields": names, "system": source}
            # Positional: a model built from keywords costs several times as much.
            event = AuditEvent(
                None, now or timezone.now(), None, label[:100],
                site_id if site_id is not None else site_id_of(obj),
                "create" if previous is None else "change", obj._meta.label_lower, str(obj.pk),
                detail,
            )  # fmt: skip
            if user is not None:
                event.actor = user
            events.append(event)


SIGN_IN_FAILED = "sign_in_failed"


def record_sign_in_failure(
    username: str, address: str, *, locked_out: bool, user_id: int | None = None
) -> AuditEvent:
    """A refused sign-in: the account name tried (staff names, not patient data), the
    address it came from, and whether the throttle now refuses that account or
    address. Never the password."""
    return record(
        None,
        SIGN_IN_FAILED,
        object_type="auth.user",
        object_id="" if user_id is None else str(user_id),
        detail={"username": username[:150], "address": address, "locked_out": locked_out},
        actor_label="anonymous",
    )
