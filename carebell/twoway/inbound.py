"""Inbound texts (SPEC §7): stored once, matched to their site and contacts, read for
keywords before anything else, and answered through the outbox.

`handle_inbound_sms` is the one entry point; webhooks verify the provider's
signature first and call it.

A text belongs to the sites that send from the number it was sent to: the sites
whose SMS sender it is, the sites of the Messaging Service that lists it, or, for
carebell's own default sender, the sites that leave theirs blank. Those sites must
all be of one organization; otherwise, or when none sends from it, or when it came
to another provider account, the text is kept unmatched (for a superuser to read)
and nothing is answered: a reply to an unknown number is how SMS pumping pays.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction

from carebell import events, outbox
from carebell.appointments.models import Appointment
from carebell.core.keywords import Intent, read_reply
from carebell.core.placeholders import RenderContext, render
from carebell.core.senders import is_service_sid, spelling_of
from carebell.core.vocab import AppointmentStatus, Channel, EntityType, Kind, OutboxStatus
from carebell.formats.service import keyword_reply, quick_reply
from carebell.inbox import conversations, reviews
from carebell.messaging.models import InboundMessage, OutboxMessage
from carebell.people import verification
from carebell.people.models import Contact, ContactPoint, Patient
from carebell.prepared import execute_prepared
from carebell.sites.models import Site, SiteSenderNumber, default_sms_senders
from carebell.sql import utc
from carebell.twoway import answers, consent


@dataclass(frozen=True)
class InboundSms:
    provider: str
    message_id: str
    from_number: str
    to_number: str
    body: str
    raw: dict


def handle_inbound_sms(sms: InboundSms, now: dt.datetime) -> InboundMessage | None:
    """Store and act on one inbound text, in one transaction. A replay (same provider
    message id) does nothing and returns None.

    No loss: when acting on the text fails, its transaction is rolled back whole and
    the text alone is stored again (flagged for a person) before the error goes on,
    so the provider's retry finds it and is a replay. Cheaper than a savepoint around
    the acting: the hot path pays nothing for a failure that is rare."""
    senders_sites = sites_sending_as(sms)
    site = _site_to_answer(senders_sites, sms.from_number)
    if site is None:  # kept unmatched, for a superuser to read; nothing is answered
        return _store(sms, None, now, needs_review=True)
    try:
        with transaction.atomic():
            return _take_in(sms, site, [s.id for s in senders_sites], now)
    except Exception:
        _store(sms, site, now, needs_review=True)
        raise


def _take_in(sms: InboundSms, site: Site, sender_site_ids: list[int], now) -> InboundMessage | None:
    """The text's arrival, reading and actions (inside the caller's transaction).

    The text is read before it is stored, so its row is written once with its
    conversation and intent; its INSERT is still what tells a replay, before anything
    is acted on, and a replay rolls back the arrival it counted."""
    conversation = conversations.record_arrival(site, sms.from_number, now)
    reached = _reached(site, sms.from_number)
    reading = read_reply(
        sms.body,
        opted_out=reached.opted_out,
        choices=len(conversations.awaited_choices(conversation)),
    )
    flagged = reading.intent is Intent.POSSIBLE_OPT_OUT  # what _act decides unless it acts
    # Free text is staff's to read whatever _act finds (a code read back included), so
    # its event is written with the text itself: one statement on PostgreSQL.
    told = reading.intent is Intent.FREE_TEXT
    # A HELP's answer is all it does: on PostgreSQL it goes in the text's own INSERT.
    answer = None
    if reading.intent is Intent.HELP:
        answer = _help_answer(site, sms.from_number, reached.language, now)
    inbound = _store(sms, site, now, conversation=conversation, intent=reading.intent,
                     needs_review=flagged, tell_staff=told, answer=answer)  # fmt: skip
    if inbound is None:
        transaction.set_rollback(True)
        return None
    if answer is None:
        _act(inbound, site, sender_site_ids, conversation, reached, reading, now)
    if inbound.needs_review != flagged:
        InboundMessage.objects.filter(id=inbound.id).update(needs_review=inbound.needs_review)
    if inbound.needs_review and inbound.intent == Intent.POSSIBLE_OPT_OUT:
        reviews.open_review(inbound, conversation, now)
    if not told and inbound.needs_review:
        events.emit(site, NEEDS_STAFF, _needs_staff(inbound.id, inbound.intent, conversation), now)
    return inbound


#: The source system's event for a text staff must read (SPEC §9): ids only.
NEEDS_STAFF = "inbound.needs_staff"


def _needs_staff(inbound_id: int | None, intent: str, conversation) -> dict:
    return {"inbound": {"id": inbound_id, "intent": intent},
            "conversation": {"id": conversation.id}}  # fmt: skip


_INBOUND = InboundMessage._meta.db_table
_STORE_SQL = f"""INSERT INTO {_INBOUND} (site_id, channel, provider, provider_message_id,
        from_address, to_address, body, raw, intent, received_at, conversation_id, needs_review)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (provider, provider_message_id) DO NOTHING RETURNING id"""
#: PostgreSQL: the text and staff's event in one statement; the event is written only
#: if the text is (a replay writes neither), its payload given with the text's id to
#: fill in.
_TOLD_ROWS = """SELECT %s AS site_id, %s AS event_type,
    jsonb_set(%s::jsonb, '{inbound,id}', to_jsonb(stored.id)) AS payload,
    %s::timestamptz AS created_at FROM stored"""
_STORE_AND_TELL_SQL = (
    f"WITH stored AS ({_STORE_SQL}), told AS ({events.insert_sql(_TOLD_ROWS)}) "
    "SELECT id FROM stored"
)


def _store_and_answer_sql(answer: str) -> str:
    """PostgreSQL: the text and its answer (`outbox.reply_clauses` for the text's row)
    in one statement; a replay writes neither."""
    return f"WITH stored AS ({_STORE_SQL}), {answer} SELECT id FROM stored"


def _store(
    sms: InboundSms,
    site: Site | None,
    now: dt.datetime,
    *,
    conversation=None,
    intent: Intent = Intent.FREE_TEXT,
    needs_review: bool = False,
    tell_staff: bool = False,
    answer: tuple[str, list] | None = None,
) -> InboundMessage | None:
    """Keep the text as received, once: None when its provider message id is stored
    already (a replay). One statement, no savepoint: ON CONFLICT DO NOTHING (on both
    databases) tells a replay without an IntegrityError to recover from. With
    `tell_staff`, the source system's event that staff must read it goes with it; an
    `answer` (PostgreSQL's `outbox.reply_clauses`) is queued with it."""
    inbound = InboundMessage(
        site=site, channel=Channel.SMS, provider=sms.provider, provider_message_id=sms.message_id,
        from_address=sms.from_number, to_address=sms.to_number, body=sms.body, raw=sms.raw,
        intent=intent.value, received_at=now, conversation=conversation,
        needs_review=needs_review,
    )  # fmt: skip
    at = utc(now)
    params = [
        site.id if site else None, Channel.SMS.value, sms.provider, sms.message_id,
        sms.from_number, sms.to_number, sms.body, json.dumps(sms.raw), intent.value, at,
        conversation.id if conversation else None, needs_review,
    ]  # fmt: skip
    sql, together = _STORE_SQL, tell_staff and connection.vendor == "postgresql"
    if together:
        payload = json.dumps(_needs_staff(None, intent.value, conversation))
        sql, params = _STORE_AND_TELL_SQL, [*params, site.id, NEEDS_STAFF, payload, at]
    elif answer is not None:
        clauses, answer_params = answer
        sql, params = _store_and_answer_sql(clauses), [*params, *answer_params]
    with execute_prepared(sql, params) as cursor:
        row = cursor.fetchone()
    if row is None:
        return None
    inbound.id = row[0]
    inbound._state.adding = False
    if tell_staff and not together:  # SQLite: no data-modifying WITH
        payload = _needs_staff(inbound.id, intent.value, conversation)
        events.emit(site, NEEDS_STAFF, payload, now)
    return inbound


#: What inbound handling reads of a site: its name and phone (a keyword's answer),
#: its time zone (dates in replies) and organization (one per sender). Anything else
#: (its delivery settings, for a cancel) loads when asked for.
_SITE_FIELDS = tuple(
    f.attname
    for f in Site._meta.concrete_fields  # from_db takes them in the model's order
    if f.attname in {"id", "organization_id", "name", "phone", "time_zone", "sms_from"}
)
_SMS_FROM = _SITE_FIELDS.index("sms_from")
_SITES = Site._meta.db_table
_SENDER_NUMBERS = SiteSenderNumber._meta.db_table
#: The sites whose sender is the number itself, or the Messaging Service that lists
#: it (the listing site's sender, whatever it is: `sites_sending_as` keeps a listing
#: only for an MG… sender).
_SENDING_AS_SQL = f"""SELECT {", ".join(_SITE_FIELDS)} FROM {_SITES}
    WHERE sms_from = %s OR sms_from IN (
        SELECT s.sms_from FROM {_SENDER_NUMBERS} n JOIN {_SITES} s ON s.id = n.site_id
        WHERE n.number = %s)"""


def sites_sending_as(sms: InboundSms) -> list[Site]:
    """The sites that send from the number `sms` was sent to, all of one organization;
    none when it came to another account or its sender is not one organization's.
    One query, read fresh every time: which site a number belongs to changes when
    staff edit a sender, and a stale answer would hand a patient's text to another
    organization. Like the text's other statements (its contact points, its INSERT),
    prepared on PostgreSQL, which then plans it once per connection."""
    to = spelling_of(sms.to_number)
    if not to or not _to_our_account(sms):
        return []
    defaults = default_sms_senders()
    service = spelling_of(sms.raw.get("MessagingServiceSid", ""))
    as_default = to in defaults or bool(service and service in defaults)
    sql, params = _SENDING_AS_SQL, [to, to]
    if as_default:  # carebell's own sender: also the sites that leave theirs blank
        sql += f" OR sms_from IN ({', '.join(['%s'] * (len(defaults) + 1))})"
        params += ["", *sorted(defaults)]
    with execute_prepared(sql + " ORDER BY id", params) as cursor:
        rows = cursor.fetchall()
    sites = [
        Site.from_db(connection.alias, _SITE_FIELDS, row)
        for row in rows
        # A listed number counts only for a Messaging Service's sites; every other
        # row matched the number itself or the default sender.
        if (sender := row[_SMS_FROM]) == to
        or is_service_sid(sender)
        or (as_default and sender in {"", *defaults})
    ]
    return sites if len({s.organization_id for s in sites}) == 1 else []


def _to_our_account(sms: InboundSms) -> bool:
    """A Twilio text names the account it came to (AccountSid, inside the signed
    form): one for another account than carebell's is none of carebell's sites'."""
    expected = getattr(settings, "TWILIO_ACCOUNT_SID", "") if sms.provider == "twilio" else ""
    return not expected or sms.raw.get("AccountSid") == expected


def _site_to_answer(sites: list[Site], address: str) -> Site | None:
    """Of the sites sharing a sender, the one that last texted `address` from it, else
    one where it is a contact's number, else the first."""
    if len(sites) <= 1:
        return sites[0] if sites else None
    ids = [s.id for s in sites]
    texted = OutboxMessage.objects.filter(site_id__in=ids, to_address=address, channel=Channel.SMS)
    chosen = texted.order_by("-id").values_list("site_id", flat=True).first()
    if chosen is None:
        points = ContactPoint.objects.filter(value=address, contact__patient__site_id__in=ids)
        chosen = points.order_by("id").values_list("contact__patient__site_id", flat=True).first()
    return next((s for s in sites if s.id == chosen), sites[0])


class Reached(NamedTuple):
    """What the contact points with the text's number at the site tell before acting:
    whether one has opted out of texts, the first one's contact's language, and their
    ids (a code read back checks them in full; see `_points`)."""

    opted_out: bool
    language: str
    point_ids: list[int]


_REACHED_SQL = f"""SELECT p.id, p.opted_out_sms, c.language
    FROM {ContactPoint._meta.db_table} p
    JOIN {Contact._meta.db_table} c ON c.id = p.contact_id
    JOIN {Patient._meta.db_table} pt ON pt.id = c.patient_id
    WHERE p.value = %s AND pt.site_id = %s ORDER BY p.id"""


def _reached(site: Site, address: str) -> Reached:
    with execute_prepared(_REACHED_SQL, [address, site.pk]) as cursor:
        rows = cursor.fetchall()
    return Reached(any(r[1] for r in rows), rows[0][2] if rows else "en", [r[0] for r in rows])


def _points(ids: list[int]):
    """The contact points `ids` in full, read (and their query built) only if iterated:
    for a text of six digits."""
    yield from ContactPoint.objects.filter(id__in=ids).select_related("contact").order_by("id")


def _act(inbound, site: Site, sender_site_ids, conversation, reached, reading, now) -> None:
    """Keywords first. STOP and START apply at every site of the sender (`sender_site_ids`):
    the number asked that sender, whichever of its sites texts it."""
    language = reached.language
    address = inbound.from_address
    if reading.intent is Intent.OPT_OUT:
        consent.opt_out_address_at(
            sender_site_ids, address, Channel.SMS, source="keyword", now=now,
            detail=inbound.body[:50],
        )  # fmt: skip
        _reply_keyword(site, address, "stop", language, now)  # consent emits contact.opted_out
    elif reading.intent is Intent.OPT_IN:
        consent.opt_in_address_at(sender_site_ids, address, Channel.SMS, source="keyword", now=now,
                                  detail=inbound.body[:50])  # fmt: skip
        _reply_keyword(site, address, "start", language, now)
    elif reading.intent is Intent.HELP:
        _reply_keyword(site, address, "help", language, now)
    elif reading.intent is Intent.CHOICE:
        intent, chosen = conversations.take_choice(conversation, reading.choice)
        _answer(site, intent, [chosen], inbound, language, now)
    elif reading.intent in (Intent.CONFIRM, Intent.CANCEL):
        _answer_open_request(site, conversation, reading.intent, inbound, language, now)
    elif verification.check_reply(_points(reached.point_ids), inbound.body, now):
        inbound.needs_review = False  # a code read back (carebell.people.verification)
    else:
        inbound.needs_review = reading.intent is Intent.POSSIBLE_OPT_OUT


def _answer_open_request(site, conversation, intent, inbound, language, now) -> None:
    """Apply a confirm or cancel to the contact's open confirmation request: the one
    there is, or the combined one; with several, ask which (SPEC §7.3)."""
    requests = list(
        OutboxMessage.objects.filter(
            site=site,
            to_address=inbound.from_address,
            kind=Kind.APPT_CONFIRMATION,
            status__in=[OutboxStatus.SENT, OutboxStatus.DELIVERED],
            event_at__gt=now,
        ).order_by("-sent_at", "-id")
    )
    groups = [m.entity_ids or [m.entity_id] for m in requests]
    open_ids = set(
        Appointment.objects.filter(
            id__in=[i for g in groups for i in g],
            status__in=[s.value for s in AppointmentStatus if s.is_open],
        ).values_list("id", flat=True)
    )
    groups = [[i for i in g if i in open_ids] for g in groups]
    groups = answers.distinct_groups(groups)
    if not groups:
        inbound.needs_review = True
        return
    combined = [g for g in groups if len(g) > 1]
    if len(groups) == 1 or combined:
        _answer(site, intent, (combined or groups)[0], inbound, language, now)
        return
    starts = dict(Appointment.objects.filter(id__in=open_ids).values_list("id", "starts_at"))
    listed = sorted((i for g in groups for i in g), key=lambda i: (starts[i], i))
    conversations.await_choice(conversation, intent, listed)
    _ask_which(site, inbound.from_address, listed, language, now)


def _answer(site, intent: Intent, appointment_ids: list[int], inbound, language, now) -> None:
    answered = answers.answer_appointments(
        site,
        intent,
        appointment_ids,
        via="sms",
        now=now,
        address=inbound.from_address,
    )
    for appointment, reply_kind, _repeated in answered:
        if reply_kind is not None:
            outbox.queue_reply(
                site,
                inbound.from_address,
                reply_kind,
                now=now,
                language=language,
                patient_id=appointment.patient_id,
                entity=(EntityType.APPOINTMENT, appointment.id),
            )


def _reply_keyword(site: Site, address: str, keyword: str, language: str, now) -> None:
    text = _keyword_text(site, keyword, language)
    outbox.queue_reply(site, address, Kind.KEYWORD_REPLY, now=now, language=language, body=text)


def _help_answer(site: Site, address: str, language: str, now) -> tuple[str, list] | None:
    """The HELP answer as clauses of the text's own INSERT (PostgreSQL), else None."""
    text = _keyword_text(site, "help", language)
    return outbox.reply_clauses(
        "stored", site, address, Kind.KEYWORD_REPLY, now=now, language=language, body=text
    )


def _keyword_text(site: Site, keyword: str, language: str) -> str:
    return render(
        keyword_reply(keyword, language),
        {"SITENAME": site.name, "SITEPHONE": site.phone},
        RenderContext(language=language, time_zone=site.zone),
    ).text


def _ask_which(site: Site, address: str, appointment_ids: list[int], language, now) -> None:
    appointments = Appointment.objects.select_related("patient").in_bulk(appointment_ids)
    context = RenderContext(language=language, time_zone=site.zone, channel=Channel.SMS)
    items = " ".join(
        f"{n}) {appointments[i].patient.first_name} "
        + render("#APPTDATE# #APPTTIME#", {"APPTDATE": appointments[i].starts_at,
                 "APPTTIME": appointments[i].starts_at}, context).text
        for n, i in enumerate(appointment_ids, start=1)
    )  # fmt: skip
    template = quick_reply("pick_visit", language).format(items=items)
    text = render(template, {"SITENAME": site.name}, context).text
    outbox.queue_reply(site, address, Kind.INBOX_REPLY, now=now, language=language, body=text)
