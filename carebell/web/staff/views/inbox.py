"""The two-way inbox (SPEC §7.4): the site's conversations, one conversation with its
people, history and reply box, and the possible opt-outs waiting for review. Thin:
every read and change is an entry point of carebell.inbox, which the API calls too.

Open pages poll (inbox.js) with a token the entry points compute in one indexed
query; an unchanged token answers 204 with no body, so an idle page costs almost
nothing. Needs work_inbox."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from carebell.core.reasons import render as reason_text
from carebell.inbox import conversations, quick_responses, replies, reviews
from carebell.inbox.conversations import Filter
from carebell.inbox.thread import MAX_WATCHED, EntryKind
from carebell.sites.models import Department
from carebell.web.sessions import passive
from carebell.web.staff import guard
from carebell.web.staff.cursors import make_cursor, parse_cursor
from carebell.web.staff.forms import CHANNELS
from carebell.web.staff.templatetags.staff import BLOCK_LABELS, KIND_LABELS, STATUS_LABELS

FILTER_LABELS = [
    (Filter.ALL, gettext_lazy("Open")),
    (Filter.UNREAD, gettext_lazy("Unread")),
    (Filter.MINE, gettext_lazy("Assigned to me")),
    (Filter.MY_DEPARTMENT, gettext_lazy("My department")),
    (Filter.POSSIBLE_OPT_OUT, gettext_lazy("Possible opt-out")),
    (Filter.UNMATCHED, gettext_lazy("Unknown number")),
    (Filter.DONE, gettext_lazy("Done")),
]


def _choice(request: HttpRequest) -> str:
    choice = request.GET.get("show", "")
    return choice if choice in conversations.FILTERS else Filter.ALL


def _list_context(request: HttpRequest) -> dict:
    choice = _choice(request)
    before = parse_cursor(request.GET.get("before", ""))
    page = conversations.list_conversations(
        request.site, by=request.user, choice=choice, before=before
    )
    next_url = ""
    if page.next_before:
        query = {"before": make_cursor(*page.next_before), "show": choice}
        next_url = "?" + "&".join(f"{k}={v}" for k, v in query.items() if v)
    return {
        "rows": list_rows(page.conversations),
        "choice": choice,
        "filters": FILTER_LABELS,
        "next_url": next_url,
        "token": conversations.list_token(request.site),
        "paged": before is not None,
    }


def list_rows(page: list) -> list[dict]:
    """What each row of the list shows, worked out once (as for the thread below):
    50 rows of links, dates and counts through template tags cost more than the
    query that read them."""
    words, open_url = _Words(), reverse("staff:inbox-conversation", args=[0])[:-2]
    return [
        {
            "href": f"{open_url}{c.pk}/",
            "address": c.address,
            "unread": c.unread,
            "unread_label": _unread(c.unread),
            "has_review": c.has_review,
            "done": c.done_at is not None,
            "patient": c.patient_name or "",
            "preview": Truncator(c.last_text or "—").chars(80),
            "iso": c.last_message_at.isoformat() if c.last_message_at else "",
            "when": words.when(c.last_message_at) if c.last_message_at else "",
            "assigned": " · ".join(_assignees(c)),
        }
        for c in page
    ]


def _unread(count: int) -> str:
    return ngettext("%(n)s unread", "%(n)s unread", count) % {"n": count} if count else ""


def _assignees(c) -> list[str]:
    found = [c.assigned_to.get_username()] if c.assigned_to_id else []
    return found + ([c.assigned_department.name] if c.assigned_department_id else [])


@guard.requires("work_inbox")
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "staff/inbox.html", _list_context(request))


def _list_idle(request: HttpRequest, site_id: int) -> bool:
    return conversations.list_unchanged(site_id, request.GET.get("token", ""))


@passive
@guard.requires("work_inbox", idle=_list_idle)
@require_GET
def inbox_poll(request: HttpRequest) -> HttpResponse:
    """204 while the site's inbox is unchanged; else the new rows and token."""
    token = conversations.list_token(request.site)
    if token == request.GET.get("token"):
        return HttpResponse(status=204)
    context = _list_context(request)
    html = render_to_string("staff/inbox_rows.html", context, request=request)
    unread = conversations.unread_conversations(request.site, request.user)
    return JsonResponse({"token": token, "html": html, "unread": unread})


def _conversation(request: HttpRequest, conversation_id: int):
    return conversations.get_conversation(request.site, conversation_id, by=request.user)


def _thread_context(request: HttpRequest, conversation, now) -> dict:
    thread = conversations.read_conversation(conversation, by=request.user, now=now)
    return {
        "conversation": conversation,
        "thread": thread,
        "thread_html": thread_html(thread),
        "watched": ",".join(str(i) for i in thread.watched),
        "token": conversations.thread_token(conversation, thread.watched),
    }


@guard.requires("work_inbox")
@require_GET
def conversation_page(request: HttpRequest, conversation_id: int) -> HttpResponse:
    now = timezone.now()
    conversation = _conversation(request, conversation_id)
    context = _thread_context(request, conversation, now)
    context.update(_reply_box(request, conversation, now))
    context["present"] = conversations.heartbeat(conversation, by=request.user, now=now)
    return render(request, "staff/inbox_conversation.html", context)


def _reply_box(request: HttpRequest, conversation, now, **form) -> dict:
    site = request.site
    timing = replies.reply_timing(conversation, now)
    return {
        "quick_responses": quick_responses.list_quick_responses(site, by=request.user),
        "timing": timing,
        "timing_why": reason_text(timing.why) if timing.why else "",
        "users": _inbox_staff(site),
        "departments": Department.objects.filter(site=site).order_by("name"),
        "form": {"body": "", "patient": "", "quick_response": "", **form},
        "can_manage_quick": guard.can(request, quick_responses.MANAGE),
    }


def _inbox_staff(site):
    """The site's staff who may work the inbox (one query, not one per person)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    perm = {"codename": "work_inbox", "content_type__app_label": "sites"}
    holds = Q(is_superuser=True) | Q(**{f"groups__permissions__{k}": v for k, v in perm.items()})
    holds |= Q(**{f"user_permissions__{k}": v for k, v in perm.items()})
    users = get_user_model().objects.filter(memberships__site=site, is_active=True)
    return list(users.filter(holds).distinct().order_by("username"))


def _watched(request: HttpRequest) -> list[int]:
    asked = request.GET.get("watch", "").split(",")[:MAX_WATCHED]
    return [int(i) for i in asked if i.isdigit()]


def _thread_idle(request: HttpRequest, site_id: int, conversation_id: int) -> bool:
    if request.GET.get("beat") == "1":
        return False  # a heartbeat writes the person's presence
    token = conversations.token_at(site_id, conversation_id, _watched(request))
    return token is not None and token == request.GET.get("token")


@passive
@guard.requires("work_inbox", idle=_thread_idle)
@require_GET
def conversation_poll(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """204 while nothing changed (one query); else the thread again. With `beat`,
    also renews this person's presence and names who else has the page open."""
    watched = _watched(request)
    # The guard checked the person may work on this site: one query by primary key.
    token = conversations.token_at(request.site.pk, conversation_id, watched)
    if token is None:
        raise Http404
    beat = request.GET.get("beat") == "1"
    changed = token != request.GET.get("token")
    if not changed and not beat:
        return HttpResponse(status=204)
    conversation = _conversation(request, conversation_id)
    now = timezone.now()
    data: dict = {"token": token}
    if beat:
        data["present"] = conversations.heartbeat(conversation, by=request.user, now=now)
    if changed:
        context = _thread_context(request, conversation, now)
        data.update(
            token=context["token"],
            watched=context["watched"],
            last_reply=context["thread"].last_reply_id,
            html=context["thread_html"],
        )
    return JsonResponse(data)


@guard.requires("work_inbox")
@require_POST
def reply(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    post = request.POST
    fields = {
        "body": post.get("body", ""),
        "quick_response": post.get("quick_response", ""),
        "patient": post.get("patient", ""),
    }
    try:
        outcome = replies.send_reply(
            conversation, body=fields["body"], quick_response_id=fields["quick_response"],
            patient_id=fields["patient"], seen_reply_id=post.get("seen_reply", ""),
            confirm_crossing=post.get("confirm") == "1", by=request.user,
        )  # fmt: skip
    except replies.WouldCross as crossing:
        return _again(request, conversation, fields, crossing=crossing.replies)
    except ValidationError as error:
        return _again(request, conversation, fields, errors=error)
    _say_how_it_went(request, outcome)
    return redirect("staff:inbox-conversation", conversation_id=conversation.pk)


def _again(request, conversation, fields, *, crossing=None, errors=None) -> HttpResponse:
    """The page again with what was written, and why it was not sent."""
    now = timezone.now()
    context = _thread_context(request, conversation, now)
    context.update(_reply_box(request, conversation, now, **fields))
    context["present"] = conversations.present(conversation, now, besides=request.user)
    context["crossing"] = crossing or []
    context["reply_errors"] = _messages_of(errors) if errors is not None else []
    return render(
        request, "staff/inbox_conversation.html", context, status=200 if crossing else 400
    )


def _messages_of(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [m for found in error.message_dict.values() for m in found]
    return list(error.messages)


def _say_how_it_went(request: HttpRequest, outcome) -> None:
    if outcome.blocked is not None:
        messages.error(request, _("Not sent: %(why)s") % {"why": reason_text(outcome.blocked)})
    elif outcome.timing.waits_until is not None:
        local = timezone.localtime(outcome.timing.waits_until)
        messages.warning(
            request,
            _("Reply queued; it waits until %(at)s (%(zone)s): %(why)s")
            % {
                "at": local.strftime("%a %d %b %H:%M"),
                "zone": request.site.time_zone,
                "why": reason_text(outcome.timing.why),
            },
        )
    else:
        messages.success(request, _("Reply queued to go now."))


@guard.requires("work_inbox")
@require_POST
def assign(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    try:
        conversations.assign(
            conversation, user_id=request.POST.get("user", ""),
            department_id=request.POST.get("department", ""), by=request.user,
        )  # fmt: skip
        messages.success(request, _("Assignment saved."))
    except ValidationError as error:
        messages.error(request, " ".join(_messages_of(error)))
    return redirect("staff:inbox-conversation", conversation_id=conversation.pk)


@guard.requires("work_inbox")
@require_POST
def mark_done(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    if request.POST.get("reopen") == "1":
        conversations.reopen(conversation, by=request.user)
        messages.success(request, _("Conversation reopened."))
        return redirect("staff:inbox-conversation", conversation_id=conversation.pk)
    conversations.mark_done(conversation, by=request.user)
    messages.success(request, _("Conversation marked done; a new text opens it again."))
    return redirect("staff:inbox")


@guard.requires("work_inbox")
@require_GET
def review_list(request: HttpRequest) -> HttpResponse:
    context = {
        "pending": reviews.pending_reviews(request.site, by=request.user),
        "decided": reviews.recent_decisions(request.site, by=request.user),
    }
    return render(request, "staff/inbox_reviews.html", context)


@guard.requires("work_inbox")
@require_POST
def review_decide(request: HttpRequest, review_id: int) -> HttpResponse:
    review = reviews.get_review(request.site, review_id, by=request.user)
    decision = request.POST.get("decision", "")
    try:
        reviews.decide(review, decision, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(_messages_of(error)))
    else:
        if decision == reviews.Decision.OPTED_OUT:
            messages.success(request, _("The number is opted out of texts from this site."))
        else:
            messages.success(request, _("Dismissed: the number still receives texts."))
    back = request.POST.get("next", "")
    if back == "conversation":
        return redirect("staff:inbox-conversation", conversation_id=review.conversation_id)
    return redirect(reverse("staff:inbox-reviews"))


# --- the thread --------------------------------------------------------------------
# A conversation may hold hundreds of messages, and each variable the template
# language resolves costs ~11 µs (MEASURED.md). So the words of a row (its label,
# status, time) are worked out here once, into a dict the template reads with one
# lookup each; the markup is all in staff/_inbox_thread.html.


class _Words:
    """The thread's words in the active language, looked up once per page."""

    def __init__(self) -> None:
        from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR

        self.days = [str(WEEKDAYS_ABBR[d]) for d in range(7)]
        self.months = {m: str(MONTHS_3[m]).title() for m in range(1, 13)}
        self.kinds = {k: str(v) for k, v in KIND_LABELS.items()}
        self.statuses = {k: str(v) for k, v in STATUS_LABELS.items()}
        self.blocks = {k: str(v) for k, v in BLOCK_LABELS.items()}
        self.channels = {k: str(v) for k, v in CHANNELS}
        self.text = _("Text from the contact")
        self.key_press = _("Key pressed on a call")
        self.reply_by = _("Reply by %(who)s")
        self.waits = _("waits until %(at)s")

    def when(self, at) -> str:
        local = timezone.localtime(at)
        day, month = self.days[local.weekday()], self.months[local.month]
        return f"{day} {local.day} {month} {local.hour:02d}:{local.minute:02d}"

    def label(self, e) -> str:
        if e.kind == EntryKind.REPLY:
            return self.reply_by % {"who": e.by or "—"}
        if e.kind == EntryKind.TEXT:
            return self.text
        if e.kind == EntryKind.KEY_PRESS:
            return self.key_press
        kind = self.kinds.get(e.message_kind) or e.message_kind.replace("_", " ")
        return f"{kind} · {self.channels.get(e.channel, e.channel)}"


def thread_rows(thread) -> list[dict]:
    """What each entry of the thread shows, oldest first, as plain text (the
    template escapes it)."""
    words, queue = _Words(), reverse("staff:queue")
    return [
        {
            "css": f"entry entry-{e.kind} {'inbound' if e.is_inbound else 'outbound'}",
            "iso": e.at.isoformat(),
            "when": words.when(e.at),
            "label": words.label(e),
            "possible_opt_out": e.intent == "possible_opt_out",
            "href": f"{queue}{e.message_id}/" if e.message_id else "",
            "status": e.status,
            "status_text": words.statuses.get(e.status, e.status),
            "why": e.block_why or words.blocks.get(e.block_reason, ""),
            "waits": words.waits % {"at": words.when(e.waits_until)} if e.waits_until else "",
            "body": e.body,
        }
        for e in thread.entries
    ]


def thread_html(thread) -> str:
    """The history as the list the page shows (the page, and its poll when changed)."""
    return render_to_string("staff/_inbox_thread.html", {"entries": thread_rows(thread)})
