"""Group messages (SPEC §5.6): a staff member picks patients from a listing, the
channels and the words, reviews every rendered message, and sends them to the queue.

The entry points, for every door (staff pages, the REST API): `create`, `select`,
`select_all`, `set_channels`, `compose`, `preview`, `summary`, `start`, `step`,
`run`, `progress`, and the sources of words `saved_formats` and `recent_texts`. Each takes
the staff member acting as `by` (who must hold group_send at the send's site) and an
optional `now`; bad input raises ValidationError and changes nothing.

Once started, a send is written to the outbox in batches of recipients (`run`): one
transaction writes a batch's messages through the outbox writer and marks its
recipients done, and each message's occurrence key names the send and the patient.
The page that started a send drives it with its progress poll (`step`); a send
nobody watches, or one stopped part-way (a crash, a deploy), is taken up by the
worker (`process_one`) — each writes only what is missing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from carebell import outbox
from carebell.audit import trail
from carebell.core.vocab import Channel
from carebell.formats.service import save_format
from carebell.messaging.models import GroupRecipient, GroupSend, MessageTemplate, OutboxMessage
from carebell.people.models import Patient
from carebell.sends.messages import (
    CHANNELS,
    KIND,
    Planned,
    Recipient,
    Texts,
    Writer,
    check_texts,
    parse_channels,
    raise_for,
    sms_price,
    store,
)
from carebell.sites import access

PERMISSION = "group_send"
MAX_RECIPIENTS = 50_000
BATCH = 2_000
PAGE = 50
RECENT = 10
LEASE = dt.timedelta(seconds=60)
#: How long one progress poll writes: short enough for the page to show progress.
STEP_SECONDS = 1.0
_ID_CHUNK = 2_000


def _allowed(by, site) -> None:
    if not access.can(by, PERMISSION, site):
        raise PermissionDenied("group_send is needed to send group messages")


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def _ids(values) -> list[int]:
    """Patient ids as given by a door, sorted and once each; a clear error otherwise."""
    try:
        return sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise ValidationError({"patients": ["Patients are named by their numeric ids."]}) from None


def _draft(group: GroupSend) -> None:
    if group.status != GroupSend.Status.DRAFT:
        raise ValidationError("This group message was sent already; start a new one.")


# --- Step 1: recipients and channels -------------------------------------------------


def create(
    site, patient_ids, *, channels=(), filters: dict | None = None, by, now=None
) -> GroupSend:
    """A draft group message to these patients of `site` (a listing's rows, all
    selected); `channels` may be chosen now or later. Ids of no patient of the site
    are refused."""
    _allowed(by, site)
    now = _now(now)
    ids = _ids(patient_ids)
    if not ids:
        raise ValidationError({"patients": ["No patient is chosen."]})
    if len(ids) > MAX_RECIPIENTS:
        raise ValidationError(
            {"patients": [f"A group message goes to at most {MAX_RECIPIENTS:,} patients."]}
        )
    known = 0
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        known += Patient.objects.filter(site=site, id__in=chunk).count()
    if known != len(ids):
        raise ValidationError({"patients": [f"{len(ids) - known} of the patients were not found."]})
    chosen = [str(c) for c in parse_channels(channels)] if channels else []
    with transaction.atomic():
        group = GroupSend.objects.create(
            site=site, channels=chosen, filters=filters or {}, created_by=by,
            created_at=now, updated_at=now,
        )  # fmt: skip
        GroupRecipient.objects.bulk_create(
            [GroupRecipient(group=group, patient_id=i) for i in ids], batch_size=_ID_CHUNK
        )
        trail.record(by, "create", group, detail={"recipients": len(ids)}, at=now)
    return group


def create_from_listing(site, rows, *, filters: dict, channels=(), by, now=None) -> GroupSend:
    """`create` for the patients of a listing's queryset (`rows`)."""
    ids = list(rows.values_list("id", flat=True)[: MAX_RECIPIENTS + 1])
    return create(site, ids, channels=channels, filters=filters, by=by, now=now)


def _changed(group: GroupSend, now, fields: list[str]) -> None:
    group.summary = {}
    group.updated_at = now
    group.save(update_fields=[*fields, "summary", "updated_at"])


def select(group: GroupSend, patient_ids, selected: bool, *, by, now=None) -> int:
    """Choose (or leave out) these patients of the draft; returns how many changed."""
    _allowed(by, group.site)
    _draft(group)
    now = _now(now)
    ids = _ids(patient_ids)
    with transaction.atomic():
        changed = 0
        for start in range(0, len(ids), _ID_CHUNK):
            rows = group.recipients.filter(patient_id__in=ids[start : start + _ID_CHUNK])
            changed += rows.exclude(selected=selected).update(selected=selected)
        if changed:
            _changed(group, now, [])
    return changed


def select_all(group: GroupSend, selected: bool, *, by, now=None) -> int:
    """Select all (or none) of the draft's patients; returns how many changed."""
    _allowed(by, group.site)
    _draft(group)
    now = _now(now)
    with transaction.atomic():
        changed = group.recipients.exclude(selected=selected).update(selected=selected)
        if changed:
            _changed(group, now, [])
    trail.record(by, "change", group, detail={"selected_all": selected}, at=now)
    return changed


def set_channels(group: GroupSend, channels, *, by, now=None) -> GroupSend:
    """Email, SMS or both."""
    _allowed(by, group.site)
    _draft(group)
    now = _now(now)
    chosen = [str(c) for c in parse_channels(channels)]
    if chosen != group.channels:
        group.channels = chosen
        _changed(group, now, ["channels"])
        trail.record(by, "change", group, detail={"fields": ["channels"]}, at=now)
    return group


# --- Step 2: the words ---------------------------------------------------------------


def saved_formats(site):
    """The site's general message formats for email and SMS (a group format first)."""
    return MessageTemplate.objects.filter(
        site=site, kind=KIND, channel__in=[str(c) for c in CHANNELS]
    ).order_by("-is_group", "channel", "name", "id")


def recent_texts(site, limit: int = RECENT) -> list[GroupSend]:
    """The words of the `limit` group messages sent last at `site`."""
    sent = GroupSend.objects.filter(site=site).exclude(status=GroupSend.Status.DRAFT)
    return list(
        sent.order_by("-started_at", "-id").only(
            "id", "started_at", "channels", "email_subject", "email_body", "sms_body"
        )[:limit]
    )


def compose(
    group: GroupSend,
    texts: Texts,
    *,
    save_email: bool = False,
    save_sms_subject: str | None = None,
    by,
    now=None,
) -> list[str]:
    """Keep the words of the draft, checked for its channels as a general message
    format is; with `save_email` the email, with `save_sms_subject` the SMS, is also
    saved as a group message format (an SMS format needs that subject to be saved,
    though it is never sent). Returns the warnings."""
    _allowed(by, group.site)
    _draft(group)
    now = _now(now)
    channels = parse_channels(group.channels)
    problems = check_texts(texts, channels, group.site)
    if save_sms_subject is not None and not save_sms_subject.strip():
        raise ValidationError(
            {"sms_subject": ["An SMS format needs a subject to be saved (it is never sent)."]}
        )
    raise_for(problems)
    with transaction.atomic():
        group.email_subject = texts.email_subject if Channel.EMAIL in channels else ""
        group.email_body = texts.email_body if Channel.EMAIL in channels else ""
        group.sms_body = texts.sms_body if Channel.SMS in channels else ""
        _changed(group, now, ["email_subject", "email_body", "sms_body"])
        trail.record(by, "change", group, detail={"fields": ["texts"]}, at=now)
        if save_email and Channel.EMAIL in channels:
            _save_format(group.site, Channel.EMAIL, texts.email_subject, texts.email_body, by, now)
        if save_sms_subject is not None and Channel.SMS in channels:
            _save_format(group.site, Channel.SMS, save_sms_subject.strip(), texts.sms_body, by, now)
    return [p.message for p in problems if not p.is_error]


def _save_format(site, channel: Channel, subject: str, body: str, by, now) -> MessageTemplate:
    # Kept out of use: a group format is picked in the wizard, never by the planner.
    template = MessageTemplate(
        site=site, channel=channel, kind=KIND, language="en", name=subject[:200],
        subject=subject[:200], body=body, is_group=True, in_use=False,
    )  # fmt: skip
    save_format(template, by=by, now=now)
    return template


def texts_of(group: GroupSend) -> Texts:
    return Texts(group.email_subject, group.email_body, group.sms_body)


# --- Step 3: review ------------------------------------------------------------------


def _writer(group: GroupSend) -> Writer:
    channels = parse_channels(group.channels)
    return Writer(group.site, channels, texts_of(group), key=f"group:{group.id}")


def _recipients(rows) -> list[Recipient]:
    fields = ("patient_id", "patient__first_name", "patient__last_name")
    return [Recipient(*row) for row in rows.values_list(*fields)]


def preview(
    group: GroupSend, *, after: int = 0, limit: int = PAGE, by, now=None
) -> tuple[list[Planned], int | None]:
    """The rendered messages of the selected patients after patient id `after`,
    `limit` patients at a time; and the id to continue after (None at the end)."""
    _allowed(by, group.site)
    try:
        after, limit = int(after), max(1, min(int(limit), 500))
    except (TypeError, ValueError):
        raise ValidationError("The page is named by a patient id and a count.") from None
    rows = group.recipients.filter(selected=True, patient_id__gt=after).order_by("patient_id")
    page = _recipients(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    planned = _writer(group).plan(page, _now(now)) if group.channels else []
    return planned, (page[-1].id if more else None)


def summary(group: GroupSend, *, by, now=None) -> dict:
    """Counts for the review: patients, messages per channel, blocked ones by
    reason, SMS segments and their estimated cost. Worked out once for the current
    selection and words (kept on the send), then read."""
    _allowed(by, group.site)
    if group.summary:
        return group.summary
    figures = _count(group, _now(now))
    if group.status == GroupSend.Status.DRAFT:
        GroupSend.objects.filter(id=group.id, updated_at=group.updated_at).update(summary=figures)
    group.summary = figures
    return figures


def _count(group: GroupSend, now: dt.datetime) -> dict:
    writer = _writer(group) if group.channels else None
    channels, blocks = Counter(), Counter()
    patients = segments = 0
    rows = group.recipients.filter(selected=True).order_by("patient_id")
    after = 0
    while True:
        page = _recipients(rows.filter(patient_id__gt=after)[:BATCH])
        if not page:
            break
        patients += len(page)
        after = page[-1].id
        for p in writer.plan(page, now) if writer else []:
            if p.blocked:
                blocks[p.block_reason] += 1
            else:
                channels[p.channel] += 1
                segments += p.segments
    price = sms_price(group.site)
    return {
        "patients": patients,
        "messages": sum(channels.values()),
        "by_channel": dict(channels),
        "blocked": sum(blocks.values()),
        "by_block": dict(blocks),
        "segments": segments,
        "price_per_segment": str(price),
        "cost": str((price * segments).quantize(Decimal("0.01"))),
    }


# --- Sending -------------------------------------------------------------------------


def start(group: GroupSend, *, by, now=None) -> GroupSend:
    """Send the draft to the queue: it is checked once more and marked sending; its
    messages are then written by `run` — a step at a time by the page's progress
    poll (`step`), or by the worker for a send nobody is watching (`process_one`)."""
    _allowed(by, group.site)
    now = _now(now)
    with transaction.atomic():
        group = (
            GroupSend.objects.select_for_update(of=("self",))
            .select_related("site__delivery")
            .get(pk=group.pk)
        )
        _draft(group)
        channels = parse_channels(group.channels)
        problems = check_texts(texts_of(group), channels, group.site)
        raise_for(problems)
        if not any(texts_of(group).body_for(c).strip() for c in channels):
            raise ValidationError("Write the message before sending it.")
        total = group.recipients.filter(selected=True).count()
        if not total:
            raise ValidationError({"patients": ["No patient is selected."]})
        group.status, group.total, group.started_by = GroupSend.Status.SENDING, total, by
        group.started_at = group.updated_at = now
        group.save()
        trail.record(by, "send", group, detail={"recipients": total, "channels": group.channels},
                     at=now)  # fmt: skip
    return group


def run(
    group: GroupSend,
    *,
    now=None,
    batch_size: int = BATCH,
    max_batches: int | None = None,
    max_seconds: float | None = None,
) -> GroupSend:
    """Write the started send's messages to the outbox, `batch_size` recipients per
    transaction, until done (or `max_batches` batches, or `max_seconds`); a send
    another runner holds is left to it. Stopping early hands the send back at once,
    for the next step (the page's poll, the worker). Returns the send as it stands."""
    began = time.monotonic()
    batches = 0
    token = _claim(group.pk, _now(now))
    while token is not None:
        out_of_time = max_seconds is not None and time.monotonic() - began >= max_seconds
        if out_of_time or (max_batches is not None and batches >= max_batches):
            GroupSend.objects.filter(pk=group.pk, lease_expires_at=token).update(
                lease_expires_at=None
            )
            break
        group = GroupSend.objects.select_related("site__delivery").get(pk=group.pk)
        token = _write_batch(group, token, batch_size, now)
        batches += 1
    return GroupSend.objects.get(pk=group.pk)


def step(group: GroupSend, *, by, now=None, seconds: float = STEP_SECONDS) -> dict:
    """Go on writing a started send for about `seconds` (what the page's progress
    poll calls, so a send needs no process of its own), then its `progress`."""
    _allowed(by, group.site)
    if group.status == GroupSend.Status.SENDING:
        run(group, now=now, max_seconds=seconds)
    return progress(group)


def _claim(group_id: int, now: dt.datetime) -> dt.datetime | None:
    """Hold the send until a lease (its token), if it is sending and nobody holds it."""
    token = now + LEASE
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    claimed = GroupSend.objects.filter(free, pk=group_id, status=GroupSend.Status.SENDING).update(
        lease_expires_at=token
    )
    return token if claimed else None


def _write_batch(group: GroupSend, token, batch_size: int, now) -> dt.datetime | None:
    """The next recipients' messages and their `done_at`, in one transaction. Returns
    the renewed lease, or None when the send is finished or no longer held. The
    messages are decided and rendered before the transaction, so it holds its locks
    (SQLite's one writer) only while writing; the lease, checked in it, keeps a
    second runner from writing the same batch."""
    at = _now(now)
    rows = group.recipients.filter(selected=True, done_at__isnull=True).order_by("patient_id")
    page = _recipients(rows[:batch_size])
    held = GroupSend.objects.filter(pk=group.pk, lease_expires_at=token)
    if not page:
        held.update(status=GroupSend.Status.DONE, finished_at=at, updated_at=at,
                    lease_expires_at=None)  # fmt: skip
        return None
    planned = _writer(group).plan(page, at)
    renewed = at + LEASE
    with transaction.atomic():
        if not held.update(lease_expires_at=renewed):
            return None
        # Rows a runner before wrote already (their keys) are neither written nor
        # counted again: the counts stay those of the outbox.
        keys = [p.decision.dedupe_key for p in planned]
        stored = set(OutboxMessage.objects.filter(dedupe_key__in=keys).values_list(
            "dedupe_key", flat=True))  # fmt: skip
        writer = outbox.OutboxWriter(at, flush_every=len(planned) + 1)
        queued, blocked = store([p for p in planned if p.decision.dedupe_key not in stored], writer)
        writer.flush()
        ids = [r.id for r in page]
        for start in range(0, len(ids), _ID_CHUNK):
            group.recipients.filter(patient_id__in=ids[start : start + _ID_CHUNK]).update(
                done_at=at
            )
        done = group.recipients.filter(selected=True, done_at__isnull=False).count()
        GroupSend.objects.filter(pk=group.pk).update(
            done=done, queued=F("queued") + queued, blocked=F("blocked") + blocked, updated_at=at,
        )  # fmt: skip
    return renewed


def process_one(now=None) -> bool:
    """Take up one started send that nobody holds (the worker's step): True when one
    was found, so the caller goes on at once."""
    now = _now(now)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    waiting = GroupSend.objects.filter(free, status=GroupSend.Status.SENDING).order_by("id").first()
    if waiting is None:
        return False
    run(waiting, now=None)
    return True


def progress(group: GroupSend) -> dict:
    """How far the send has got: status, recipients done of total, messages queued
    and blocked, and the percentage."""
    group = GroupSend.objects.only("status", "total", "done", "queued", "blocked", "site_id").get(
        pk=group.pk
    )
    total = group.total
    percent = 100 if group.status == GroupSend.Status.DONE else (
        int(group.done * 100 / total) if total else 0
    )  # fmt: skip
    return {
        "id": group.pk,
        "status": group.status,
        "total": total,
        "done": group.done,
        "queued": group.queued,
        "blocked": group.blocked,
        "percent": percent,
    }
