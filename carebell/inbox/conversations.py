"""A contact's conversation with a site (SPEC §7.4): one per site, channel and
address — its texts, who works on it, each person's unread count, and the question
it is waiting on (which visit a reply is about).

The entry points every door calls (the staff pages, the REST API) take the staff
member as `by` and check the one access rule: a conversation of a site they may not
see does not exist for them (404); working the inbox needs `work_inbox` (403).
Each change bumps the conversation's `version` under its row lock, which is what an
open page polls for.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat, Greatest
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from carebell.audit import trail
from carebell.core.keywords import Intent
from carebell.core.vocab import Channel
from carebell.inbox.models import Conversation, ConversationRead, OptOutReview, Presence
from carebell.inbox.thread import MAX_WATCHED
from carebell.messaging.models import InboundMessage
from carebell.people.models import ContactPoint
from carebell.prepared import execute_prepared
from carebell.sites import access
from carebell.sites.models import Department, Site
from carebell.sql import ints as sql_ints
from carebell.sql import is_row_id, utc, utc_params

PERMISSION = "work_inbox"
PAGE_SIZE = 50
#: A heartbeat older than this means the page was closed (the page beats every 10 s).
PRESENCE_FOR = dt.timedelta(seconds=30)
#: The list poll also counts changes this far behind the newest one: a transaction
#: that took its time may commit a change stamped before one already seen.
LATE_COMMIT = dt.timedelta(seconds=2)
#: The list token of a site that has no conversation yet.
EMPTY_LIST_TOKEN = "0"  # noqa: S105 - not a secret


class Filter:
    ALL = ""
    UNREAD = "unread"
    MINE = "mine"
    MY_DEPARTMENT = "department"
    POSSIBLE_OPT_OUT = "opt_out"
    UNMATCHED = "unmatched"
    DONE = "done"


FILTERS = (
    Filter.ALL,
    Filter.UNREAD,
    Filter.MINE,
    Filter.MY_DEPARTMENT,
    Filter.POSSIBLE_OPT_OUT,
    Filter.UNMATCHED,
    Filter.DONE,
)


def require(by, site: Site | None, permission: str = PERMISSION) -> Site:
    """`site` if `by` may work there: 404 for a site they may not see, 403 without
    `permission`. The answer is kept on `by` (one request's user object), so the
    several entry points a page calls ask the database once."""
    checked = by.__dict__.setdefault("_inbox_access", {})
    key = (getattr(site, "pk", None), permission)
    if key not in checked:
        checked[key] = (
            "ok" if access.can(by, permission, site) else "forbidden" if access.may_see(by, site)
            else "unseen"
        )  # fmt: skip
    if checked[key] == "unseen":
        raise Http404
    if checked[key] == "forbidden":
        raise PermissionDenied
    return site


# --- arrivals (the inbound room calls these) ----------------------------------------


_CONVERSATIONS = Conversation._meta.db_table
#: One statement for a text's arrival, on both databases: the conversation is made on
#: its first text or counted one text more (and opened again) on any later one, and
#: the row stays locked until the caller's transaction ends, as a SELECT … FOR
#: UPDATE would hold it. It replaces a locked read, maybe an INSERT, and an UPDATE.
_ARRIVAL_SQL = f"""INSERT INTO {_CONVERSATIONS} AS c (site_id, channel, address, unread_count,
        last_message_at, version, changed_at, awaiting_choice, created_at, updated_at)
    VALUES (%s, %s, %s, 1, %s, 1, %s, '{{}}', %s, %s)
    ON CONFLICT (site_id, channel, address) DO UPDATE SET
        unread_count = c.unread_count + 1, version = c.version + 1,
        last_message_at = excluded.last_message_at, changed_at = excluded.changed_at,
        done_at = NULL, done_by_id = NULL
    RETURNING id, unread_count, version, awaiting_choice, assigned_department_id"""
_ARRIVAL_FIELDS = ("id", "unread_count", "version", "awaiting_choice", "assigned_department_id")
#: What an arrival sets, known without reading it back.
_ARRIVAL_KNOWN = ("site_id", "channel", "address", "last_message_at", "changed_at", "done_at",
                  "done_by_id")  # fmt: skip
_ARRIVED = {*_ARRIVAL_FIELDS, *_ARRIVAL_KNOWN}
#: What the copy `record_arrival` returns holds, in the model's field order (as from_db
#: takes them), worked out once; the other fields stay deferred.
_ARRIVED_FIELDS = [f.attname for f in Conversation._meta.concrete_fields if f.attname in _ARRIVED]


def record_arrival(site: Site, address: str, now: dt.datetime) -> Conversation:
    """The conversation a text from `address` belongs to (made on its first text),
    locked for the caller's transaction, with one more text received; a conversation
    marked done opens again. The copy returned holds what the arrival changed and
    what the inbound room reads (the question it waits on, its department); other
    fields load when read."""
    at = utc(now)  # bound once for its four places (each `utc` asks for the connection)
    # Prepared on PostgreSQL: one of the few statements every inbound text runs.
    with execute_prepared(_ARRIVAL_SQL, [site.pk, Channel.SMS.value, address, at, at, at, at]) as c:
        row = dict(zip(_ARRIVAL_FIELDS, c.fetchone(), strict=True))
    if isinstance(row["awaiting_choice"], str):  # JSON as text (SQLite; Django's psycopg)
        row["awaiting_choice"] = json.loads(row["awaiting_choice"])
    known = (site.pk, Channel.SMS.value, address, now, now, None, None)
    row.update(zip(_ARRIVAL_KNOWN, known, strict=True))
    values = [row[f] for f in _ARRIVED_FIELDS]
    conversation = Conversation.from_db(connection.alias, _ARRIVED_FIELDS, values)
    conversation.site = site
    return conversation


def touch(conversation: Conversation, now: dt.datetime, **changes) -> None:
    """Store `changes` and one more version, so open pages see them."""
    Conversation.objects.filter(id=conversation.id).update(
        version=F("version") + 1, changed_at=now, **changes
    )
    conversation.refresh_from_db()


def await_choice(conversation: Conversation, intent: Intent, appointment_ids: list[int]) -> None:
    """Remember that the contact was asked which of these visits `intent` is about:
    their next reply may be a number."""
    conversation.awaiting_choice = {"intent": intent.value, "appointments": appointment_ids}
    conversation.save(update_fields=["awaiting_choice"])


def awaited_choices(conversation: Conversation) -> list[int]:
    """The visits the contact was asked to choose from, in the order listed."""
    return (conversation.awaiting_choice or {}).get("appointments", [])


def take_choice(conversation: Conversation, choice: int) -> tuple[Intent, int]:
    """The intent and the visit the contact chose by number (1 = first listed); the
    question is answered, so the conversation waits on nothing any more."""
    waiting = conversation.awaiting_choice
    conversation.awaiting_choice = {}
    conversation.save(update_fields=["awaiting_choice"])
    return Intent(waiting["intent"]), waiting["appointments"][choice - 1]


# --- the list --------------------------------------------------------------------------


def _seen(user) -> Subquery:
    reads = ConversationRead.objects.filter(conversation=OuterRef("pk"), user_id=user.pk)
    return Subquery(reads.values("seen_count")[:1], output_field=IntegerField())


def with_unread(queryset, user):
    """`queryset` of conversations annotated with `unread`: texts `user` has not seen."""
    return queryset.annotate(
        unread=Greatest(F("unread_count") - Coalesce(_seen(user), 0), Value(0))
    )


def _known_number(site_id_path: str = "site_id"):
    return ContactPoint.objects.filter(
        value=OuterRef("address"), contact__patient__site_id=OuterRef(site_id_path)
    )


def _departments_of(user, site: Site):
    return Department.objects.filter(site=site, members=user)


def filtered(site: Site, user, choice: str):
    """The site's conversations under one of FILTERS (done ones only under DONE)."""
    rows = with_unread(Conversation.objects.filter(site=site), user)
    if choice == Filter.DONE:
        return rows.filter(done_at__isnull=False)
    rows = rows.filter(done_at__isnull=True)
    if choice == Filter.UNREAD:
        rows = rows.filter(unread__gt=0)
    elif choice == Filter.MINE:
        rows = rows.filter(assigned_to_id=user.pk)
    elif choice == Filter.MY_DEPARTMENT:
        rows = rows.filter(assigned_department__in=_departments_of(user, site))
    elif choice == Filter.POSSIBLE_OPT_OUT:
        pending = OptOutReview.objects.filter(conversation=OuterRef("pk"), decision="")
        rows = rows.filter(Exists(pending))
    elif choice == Filter.UNMATCHED:
        rows = rows.exclude(Exists(_known_number()))
    return rows


@dataclass(frozen=True)
class Page:
    conversations: list
    next_before: tuple[dt.datetime, int] | None


def list_conversations(
    site: Site, *, by, choice: str = Filter.ALL, before=None, limit: int = PAGE_SIZE, now=None
) -> Page:
    """One page of the site's conversations under `choice`, newest first, each with
    `unread` (for `by`), `has_review` and `patient_name` (None: nobody's number);
    `before` is the (last_message_at, id) the previous page ended on."""
    require(by, site)
    if choice not in FILTERS:
        raise ValidationError({"filter": f"unknown filter {choice!r}"}, code="invalid")
    pending = OptOutReview.objects.filter(conversation=OuterRef("pk"), decision="")
    names = _known_number().order_by("contact__patient__last_name", "contact__patient__id")
    names = names.annotate(
        name=Concat("contact__patient__first_name", Value(" "), "contact__patient__last_name")
    )
    texts = InboundMessage.objects.filter(conversation=OuterRef("pk")).order_by("-received_at")
    rows = filtered(
        site, by, choice
    ).annotate(
        has_review=Exists(pending),
        patient_name=Subquery(names.values("name")[:1]),  # None: nobody's number
        last_text=Subquery(texts.values("body")[:1]),
    )
    rows = rows.select_related("assigned_to", "assigned_department")
    if before is not None:
        at, ident = before
        rows = rows.filter(Q(last_message_at__lt=at) | Q(last_message_at=at, id__lt=ident))
    # The order of the index conversation_site_newest: PostgreSQL walks it and stops
    # after one page, working out the annotations for those rows only.
    page = list(rows.order_by("-last_message_at", "-id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    trail.record(by, "list", object_type="inbox.conversation", site_id=site.pk,
                 detail={"filter": choice or "all"}, at=now)  # fmt: skip
    last = page[-1] if more else None
    return Page(page, (last.last_message_at, last.pk) if last else None)


def unread_conversations(site: Site | None, user, limit: int = 100) -> int:
    """How many open conversations of the site hold texts `user` has not seen (at most
    `limit`): the header's count, one query."""
    if site is None or not access.can(user, PERMISSION, site):
        return 0
    rows = with_unread(Conversation.objects.filter(site=site, done_at__isnull=True), user)
    return len(rows.filter(unread__gt=0).values("pk")[:limit])


def list_token(site: Site) -> str:
    """What the inbox list's poll compares: the site's newest change and how many
    conversations changed shortly before it (see LATE_COMMIT). One index range scan."""
    newest = (
        Conversation.objects.filter(site=site, changed_at__isnull=False)
        .order_by("-changed_at")
        .values_list("changed_at", flat=True)
        .first()
    )
    if newest is None:
        return EMPTY_LIST_TOKEN
    recent = Conversation.objects.filter(site=site, changed_at__gte=newest - LATE_COMMIT)
    return f"{newest.timestamp():.6f}.{recent.count()}"


# --- one conversation ---------------------------------------------------------------


def get_conversation(site: Site, conversation_id, *, by) -> Conversation:
    """The conversation `conversation_id` of `site`, if `by` may work on it; else 404
    (or 403 without the permission)."""
    require(by, site)
    queryset = Conversation.objects.filter(site=site).select_related(
        "site__delivery", "assigned_to", "assigned_department", "done_by"
    )
    return access.get_object_or_404_for(by, queryset, "site", pk=conversation_id)


def mark_read(conversation: Conversation, *, by, now=None) -> None:
    """Everything the conversation holds now counts as seen by `by`."""
    now = now or timezone.now()
    ConversationRead.objects.update_or_create(
        conversation=conversation,
        user_id=by.pk,
        defaults={"seen_count": conversation.unread_count, "read_at": now},
    )


def read_conversation(conversation: Conversation, *, by, now=None):
    """The conversation's thread (see `thread.load`) for `by`, marked read by them
    and audited as a view of the patients behind the number."""
    from carebell.inbox import thread

    require(by, conversation.site)
    now = now or timezone.now()
    loaded = thread.load(conversation)
    mark_read(conversation, by=by, now=now)
    trail.record(by, "view", conversation, at=now,
                 detail={"patients": [p.patient.pk for p in loaded.people]})  # fmt: skip
    return loaded


def _assignable_user(site: Site, user_id):
    if user_id in (None, ""):
        return None
    user = get_user_model().objects.filter(pk=_as_int(user_id, "user")).first()
    if user is None or not access.can(user, PERMISSION, site):
        raise ValidationError({"user": "not a staff member who works this site's inbox"})
    return user


def _assignable_department(site: Site, department_id):
    if department_id in (None, ""):
        return None
    department = Department.objects.filter(site=site, pk=_as_int(department_id, "department"))
    found = department.first()
    if found is None:
        raise ValidationError({"department": "not a department of this site"})
    return found


def _as_int(value, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: "not a number"}) from None


def assign(
    conversation: Conversation, *, user_id=None, department_id=None, by, now=None
) -> Conversation:
    """Give the conversation to a staff member and/or a department of its site (None
    for either clears it). A person who cannot work the inbox, or a department of
    another site, is a ValidationError and nothing changes."""
    site = require(by, conversation.site)
    now = now or timezone.now()
    user = _assignable_user(site, user_id)
    department = _assignable_department(site, department_id)
    with transaction.atomic():
        touch(conversation, now, assigned_to=user, assigned_department=department)
        trail.record(by, "assign", conversation, at=now, detail={
            "user": user.pk if user else None,
            "department": department.pk if department else None,
        })  # fmt: skip
    return conversation


def mark_done(conversation: Conversation, *, by, now=None) -> Conversation:
    """Nothing left to do here; the next text from the contact opens it again."""
    require(by, conversation.site)
    now = now or timezone.now()
    with transaction.atomic():
        touch(conversation, now, done_at=now, done_by=by)
        trail.record(by, "done", conversation, at=now)
    return conversation


def reopen(conversation: Conversation, *, by, now=None) -> Conversation:
    require(by, conversation.site)
    now = now or timezone.now()
    with transaction.atomic():
        touch(conversation, now, done_at=None, done_by=None)
        trail.record(by, "reopen", conversation, at=now)
    return conversation


# --- presence --------------------------------------------------------------------------


def heartbeat(conversation: Conversation, *, by, now=None) -> list[str]:
    """Note that `by` has the conversation open; the names of the others who do."""
    now = now or timezone.now()
    Presence.objects.update_or_create(
        conversation=conversation, user_id=by.pk, defaults={"seen_at": now}
    )
    return present(conversation, now, besides=by)


def present(conversation: Conversation, now: dt.datetime, *, besides) -> list[str]:
    others = Presence.objects.filter(conversation=conversation, seen_at__gte=now - PRESENCE_FOR)
    others = others.exclude(user_id=besides.pk).select_related("user").order_by("user__username")
    return [p.user.get_full_name() or p.user.get_username() for p in others]


def leave(conversation: Conversation, *, by) -> None:
    """The page was closed: `by` is no longer there."""
    Presence.objects.filter(conversation=conversation, user_id=by.pk).delete()


# --- polling ---------------------------------------------------------------------------


def thread_token(conversation: Conversation, watched: list[int]) -> str:
    """What an open conversation's poll compares, in one query by primary keys: its
    version, and the newest change among the outbox rows the page still watches (a
    reply's delivery report moves its row, not the conversation)."""
    return token_at(conversation.site_id, conversation.pk, watched) or ""


def token_at(site_id: int, conversation_id: int, watched: list[int]) -> str | None:
    """`thread_token` of the conversation `conversation_id` of the site `site_id`
    (which the caller checked the person may work on), None when there is none.

    Hand-written SQL, one statement by primary keys: the idle poll runs it every few
    seconds per open page, and building the same query through the ORM cost more CPU
    than everything else the poll does (on PostgreSQL the watched ids travel as one
    array parameter, see carebell.sql.by_ids)."""
    from carebell.messaging.models import OutboxMessage

    if not is_row_id(conversation_id):
        return None
    watched = [i for i in map(int, watched[:MAX_WATCHED]) if is_row_id(i)]
    newest, params = "NULL", []
    if watched:
        outbox = _quoted(OutboxMessage._meta.db_table)
        if connection.vendor == "postgresql":
            ids, params = "= ANY(%s::bigint[])", [sql_ints(watched)]
        else:
            ids, params = "IN (" + ", ".join(["%s"] * len(watched)) + ")", list(watched)
        # Only the site's own rows: the ids come from the client, and another site's
        # message must not show its changes through this token.
        newest = f"(SELECT MAX(updated_at) FROM {outbox} WHERE id {ids} AND site_id = %s)"
        params.append(site_id)
    table = _quoted(Conversation._meta.db_table)
    sql = f"SELECT version, {newest} FROM {table} WHERE id = %s AND site_id = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, conversation_id, site_id])
        row = cursor.fetchone()
    if row is None:
        return None
    version, stamp = row[0], _aware(row[1])
    return f"{version}.{stamp.timestamp():.6f}" if stamp else str(version)


def list_unchanged(site_id: int, token: str) -> bool:
    """True when `list_token` of the site `site_id` (which the caller checked the
    person may work on) is still `token`, in one index range scan: the newest change
    and the count since LATE_COMMIT before it are those the token was made from.

    The window starts from the token's own newest stamp, so the statement needs no
    date arithmetic of either database; if anything newer came, the window's newest
    differs, and if a late commit landed inside it, its count does."""
    table = _quoted(Conversation._meta.db_table)
    if token == EMPTY_LIST_TOKEN:
        sql = f"SELECT 1 FROM {table} WHERE site_id = %s AND changed_at IS NOT NULL LIMIT 1"
        with connection.cursor() as cursor:
            cursor.execute(sql, [site_id])
            return cursor.fetchone() is None
    newest = _token_stamp(token)
    if newest is None:
        return False
    sql = f"SELECT MAX(changed_at), COUNT(*) FROM {table} WHERE site_id = %s AND changed_at >= %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, utc_params([site_id, newest - LATE_COMMIT]))
        stamp, count = cursor.fetchone()
    stamp = _aware(stamp)
    return stamp is not None and f"{stamp.timestamp():.6f}.{count}" == token


#: Ids past a 64-bit integer exist in neither database (and SQLite refuses to bind them).
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _token_stamp(token: str) -> dt.datetime | None:
    """The newest change a `list_token` names ("<seconds>.<micros>.<count>"), read
    with integers (a float would lose the last microsecond), or None if malformed."""
    parts = token.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[1]) != 6:
        return None
    try:
        return _EPOCH + dt.timedelta(seconds=int(parts[0]), microseconds=int(parts[1]))
    except OverflowError:
        return None


def _aware(value) -> dt.datetime | None:
    """A timestamp read by a raw cursor as the ORM reads it: PostgreSQL returns it
    aware (in UTC); SQLite returns the naive UTC text Django stored."""
    if value is None or (isinstance(value, dt.datetime) and value.tzinfo is not None):
        return value
    if not isinstance(value, dt.datetime):
        value = parse_datetime(value)
    return value.replace(tzinfo=dt.UTC)


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)
