"""Staff notifications (SPEC §7.4): what carebell tells the site's staff — a patient
cancelled, a reply that may mean "stop", a message that failed — newest first, each
marked read per person. Needs work_inbox."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from carebell.audit import trail
from carebell.inbox.models import NotificationRead, StaffNotification
from carebell.sites import access
from carebell.web.staff import guard
from carebell.web.staff.cursors import make_cursor, parse_cursor

PAGE_SIZE = 50
#: The header counts unread notifications up to here ("99+" beyond).
COUNT_LIMIT = 100


def _notes(site, user):
    read = NotificationRead.objects.filter(notification=OuterRef("pk"), user_id=user.pk)
    return StaffNotification.objects.filter(site=site).annotate(is_read=Exists(read))


def unread_count(user, site) -> int:
    """How many of the site's notifications `user` has not read (at most COUNT_LIMIT)."""
    if site is None or not access.can(user, "work_inbox", site):
        return 0
    unread = _notes(site, user).filter(is_read=False).values("pk")[:COUNT_LIMIT]
    return len(unread)


@guard.requires("work_inbox")
def notification_list(request: HttpRequest) -> HttpResponse:
    notes = _notes(request.site, request.user).order_by("-created_at", "-id")
    only_unread = request.GET.get("show") == "unread"
    if only_unread:
        notes = notes.filter(is_read=False)
    cursor = parse_cursor(request.GET.get("before", ""))
    if cursor:
        at, ident = cursor
        notes = notes.filter(created_at__lte=at).filter(
            Q(created_at__lt=at) | Q(created_at=at, id__lt=ident)
        )
    page = list(notes[: PAGE_SIZE + 1])
    next_url = ""
    if len(page) > PAGE_SIZE:
        page, last = page[:PAGE_SIZE], page[PAGE_SIZE - 1]
        query = {"before": make_cursor(last.created_at, last.pk)}
        next_url = "?" + urlencode({**query, **({"show": "unread"} if only_unread else {})})
    trail.record(
        request.user,
        "list",
        object_type="inbox.staffnotification",
        site_id=request.site.pk,
        detail={"page": "notifications"},
    )
    context = {
        "notes": page,
        "next_url": next_url,
        "only_unread": only_unread,
        "unread": unread_count(request.user, request.site),
    }
    return render(request, "staff/notifications.html", context)


@guard.requires("work_inbox")
@require_POST
def mark_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification (`notification`) or all of the site's (`all`) as read
    by the signed-in person."""
    notes = _notes(request.site, request.user).filter(is_read=False)
    if request.POST.get("all") != "1":
        try:
            notes = notes.filter(pk=int(request.POST.get("notification", "")))
        except ValueError:
            notes = notes.none()
    now = timezone.now()
    ids = list(notes.values_list("pk", flat=True)[:1000])
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification_id=i, user=request.user, read_at=now) for i in ids],
        ignore_conflicts=True,  # a double click marks it once
    )
    if not ids:
        messages.info(request, _("Nothing new to mark as read."))
    return redirect("staff:notifications")
