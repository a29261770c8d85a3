"""The message queue (SPEC §8): every message of the current site by date range and
filters, one page at a time by keyset (planned time, id) — no OFFSET and no count
over millions of rows; a message's own page with its history, attempts and reasons;
deleting (cancelling) pending messages; printing; a CSV export streamed in constant
memory. Viewing needs view_queue; deleting needs delete_queued."""

from __future__ import annotations

import csv
import datetime as dt
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from carebell.audit import trail
from carebell.core.vocab import Channel, EntityType, Kind, OutboxStatus
from carebell.messaging.models import PENDING, DeliveryAttempt, OutboxMessage, ProviderEvent
from carebell.sites import access
from carebell.web.staff import engine, guard
from carebell.web.staff.cursors import make_cursor, parse_cursor
from carebell.web.staff.templatetags.staff import KIND_LABELS, STATUS_LABELS

PAGE_SIZE = 50
EXPORT_CHUNK = 2000
MAX_SELECTED = 500
ENTITY_LABELS = {
    EntityType.APPOINTMENT: gettext_lazy("Appointment"),
    EntityType.PRESCRIPTION: gettext_lazy("Prescription"),
    EntityType.FILL: gettext_lazy("Fill"),
    EntityType.RECALL: gettext_lazy("Recall"),
    EntityType.PATIENT: gettext_lazy("Patient"),
    EntityType.STAFF_NOTIFICATION: gettext_lazy("Staff notification"),
}
ENTITY_TYPES = [(e.value, ENTITY_LABELS.get(e, e.value)) for e in EntityType]
LIST_FIELDS = (
    "id",
    "planned_at",
    "channel",
    "kind",
    "priority",
    "entity_type",
    "entity_name",
    "status",
    "block_reason",
    "attempts",
    "to_address",
    "patient_id",
)


def _blank(choices) -> list[tuple[str, str]]:
    return [("", _("Any")), *choices]


class QueueFilter(forms.Form):
    """The queue's filters; every field optional, each checked (a bad value is a form
    error shown on the page, never a 500)."""

    date_from = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    channel = forms.ChoiceField(label=gettext_lazy("Method"), required=False)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    priority = forms.IntegerField(
        label=gettext_lazy("Priority"), required=False, min_value=0, max_value=99
    )
    entity = forms.ChoiceField(label=gettext_lazy("Entity"), required=False)
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    attempts = forms.IntegerField(
        label=gettext_lazy("Attempts"), required=False, min_value=0, max_value=99
    )

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["channel"].choices = _blank([(c.value, c.value.upper()) for c in Channel])
        self.fields["kind"].choices = _blank(
            [(k.value, KIND_LABELS.get(k.value, k.value)) for k in Kind]
        )
        self.fields["entity"].choices = _blank(ENTITY_TYPES)
        self.fields["status"].choices = _blank(
            [(s.value, STATUS_LABELS.get(s.value, s.value)) for s in OutboxStatus]
        )

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def rows(self, site):
        """The site's messages matching the (valid) filters, in keyset order."""
        data = self.cleaned_data if self.is_bound else {}
        rows = OutboxMessage.objects.filter(site=site)
        if day := data.get("date_from"):
            rows = rows.filter(planned_at__gte=_local_midnight(site, day))
        if day := data.get("date_to"):
            rows = rows.filter(planned_at__lt=_local_midnight(site, day + dt.timedelta(days=1)))
        exact = {
            "channel": "channel",
            "kind": "kind",
            "entity": "entity_type",
            "status": "status",
            "priority": "priority",
            "attempts": "attempts",
        }
        for name, column in exact.items():
            if data.get(name) not in (None, ""):
                rows = rows.filter(**{column: data[name]})
        return rows.order_by("planned_at", "id")

    def query(self) -> dict:
        """The filters as given, for links that keep them (cursor, export, print)."""
        if not self.is_bound:
            return {}
        return {name: self.data[name] for name in self.fields if self.data.get(name)}


def _local_midnight(site, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=site.zone)


def after(rows, cursor: tuple[dt.datetime, int]):
    """Rows strictly after (planned_at, id): the keyset step, one index range."""
    from django.db.models import Q

    at, ident = cursor
    # The first condition is implied by the second; it is there because it is the one
    # the (site, planned_at) index can start from (the OR alone is only a filter,
    # read row by row from the start of the range).
    return rows.filter(planned_at__gte=at).filter(
        Q(planned_at__gt=at) | Q(planned_at=at, id__gt=ident)
    )


def _filtered(request: HttpRequest) -> QueueFilter:
    data = request.GET if any(name in request.GET for name in QueueFilter.base_fields) else None
    if data is None:
        today = timezone.now().astimezone(request.site.zone).date()
        data = {"date_from": today.isoformat()}
    return QueueFilter(data)


@guard.requires("view_queue")
def queue(request: HttpRequest) -> HttpResponse:
    form = _filtered(request)
    page, cursor_error, next_cursor = [], "", ""
    cursor_text = request.GET.get("after", "")
    cursor = parse_cursor(cursor_text) if cursor_text else None
    if cursor_text and cursor is None:
        cursor_error = _("That page link is not valid any more; showing the first page.")
    if form.is_valid():
        rows = form.rows(request.site).only(*LIST_FIELDS)
        if cursor:
            rows = after(rows, cursor)
        page = list(rows[: PAGE_SIZE + 1])
        if len(page) > PAGE_SIZE:
            page = page[:PAGE_SIZE]
            next_cursor = make_cursor(page[-1].planned_at, page[-1].pk)
    _label_rows(page, request.site.zone)
    trail.record(
        request.user,
        "list",
        object_type="messaging.outboxmessage",
        site_id=request.site.pk,
        detail={"filters": form.query(), "after": bool(cursor)},
    )
    query = form.query()
    context = {
        "form": form,
        "messages_page": page,
        "cursor_error": cursor_error,
        "next_url": f"?{urlencode({**query, 'after': next_cursor})}" if next_cursor else "",
        "first_url": f"?{urlencode(query)}" if cursor else "",
        "export_url": f"?{urlencode(query)}",
        "query": urlencode(query),
        "can_delete": guard.can(request, "delete_queued"),
        "message_base": reverse("staff:queue"),
        "select_label": _("Select message"),
    }
    return render(request, "staff/queue.html", context)


def _label_rows(page: list[OutboxMessage], zone) -> None:
    """What each row shows, worked out once here: a page is 50 rows, and the same
    labels through template filters cost more than the query that read them."""
    kinds = {k: str(v) for k, v in KIND_LABELS.items()}
    statuses = {k: str(v) for k, v in STATUS_LABELS.items()}
    for message in page:
        local = message.planned_at.astimezone(zone)
        message.pending = message.status in PENDING
        message.when_iso = local.isoformat()
        message.when_text = local.strftime("%a %-d %b %Y %H:%M")
        message.kind_text = kinds.get(message.kind, message.kind.replace("_", " "))
        message.status_text = statuses.get(message.status, message.status)


def _message(request: HttpRequest, message_id: int) -> OutboxMessage:
    mine = OutboxMessage.objects.filter(site=request.site)
    return access.get_object_or_404_for(request.user, mine, "site", pk=message_id)


@guard.requires("view_queue")
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _message(request, message_id)
    attempts = list(DeliveryAttempt.objects.filter(message=message).order_by("number"))
    reports = ProviderEvent.objects.filter(attempt__in=attempts).order_by("received_at", "id")
    events = [
        {"event": e, "why": engine.reason_sentences(e.reasons)}
        for e in message.events.all().order_by("at", "id")
    ]
    trail.record(request.user, "view", message)
    context = {
        "message": message,
        "why": engine.reason_sentences(message.reasons),
        "events": events,
        "attempts": attempts,
        "reports": list(reports),
        "pending": message.status in PENDING,
        "can_delete": guard.can(request, "delete_queued"),
    }
    return render(request, "staff/queue_message.html", context)


@guard.requires("delete_queued")
@require_POST
def cancel(request: HttpRequest) -> HttpResponse:
    """Delete (cancel) one or several selected pending messages of the current site."""
    try:
        ids = sorted({int(value) for value in request.POST.getlist("message")})
    except ValueError:
        ids = None
    back = request.POST.get("next", "")
    if not back.startswith("/staff/"):
        back = "staff:queue"
    if not ids:
        messages.error(request, _("Choose at least one message to delete."))
        return redirect(back)
    if len(ids) > MAX_SELECTED:
        raise PermissionDenied
    cancelled = engine.cancel_queued(request.site, ids, by=request.user)
    kept = len(ids) - cancelled
    text = ngettext(
        "%(n)d message deleted from the queue.", "%(n)d messages deleted from the queue.", cancelled
    ) % {"n": cancelled}
    if kept:
        text += " " + ngettext(
            "%(n)d was already sent or ended, and is kept.",
            "%(n)d were already sent or ended, and are kept.",
            kept,
        ) % {"n": kept}
    (messages.success if cancelled else messages.warning)(request, text)
    return redirect(back)


CSV_HEADER = [
    "id",
    "planned_at",
    "zone",
    "method",
    "kind",
    "priority",
    "entity",
    "entity_name",
    "status",
    "block_reason",
    "attempts",
    "to",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows, zone):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    # The list's columns but the patient's id, which the export leaves out.
    columns = [name for name in LIST_FIELDS if name != "patient_id"]
    for row in rows.values_list(*columns).iterator(chunk_size=EXPORT_CHUNK):
        ident, planned_at, *rest = row
        local = planned_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        yield writer.writerow([ident, local, str(zone), *rest])


@guard.requires("view_queue")
def export(request: HttpRequest) -> HttpResponse:
    form = _filtered(request)
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[k].label if k in form.fields else ''}: {' '.join(v)}"
            for k, v in form.errors.items()
        )
        return HttpResponse(
            _("The filters are not valid: %s") % errors,
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    trail.record(
        request.user,
        "export",
        object_type="messaging.outboxmessage",
        site_id=request.site.pk,
        detail={"filters": form.query()},
    )
    response = StreamingHttpResponse(
        _csv_lines(form.rows(request.site), request.site.zone), content_type="text/csv"
    )
    day = timezone.now().astimezone(request.site.zone).date().isoformat()
    response["Content-Disposition"] = f'attachment; filename="queue-{day}.csv"'
    return response
