"""The audit log (SPEC §10): who saw or changed what at the current site, newest first,
filtered by staff member, patient, action and date, one page at a time by keyset
(time, id). Needs view_audit. Reading the log is itself audited."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django import forms
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carebell.audit import trail
from carebell.audit.models import AuditEvent
from carebell.web.staff import guard
from carebell.web.staff.cursors import make_cursor, parse_cursor

PAGE_SIZE = 50
ACTIONS = ["view", "list", "export", "create", "change", "delete", "cancel", "sign_in_failed"]


class AuditFilter(forms.Form):
    user = forms.CharField(
        label=gettext_lazy("Staff member"),
        required=False,
        max_length=150,
        help_text=gettext_lazy("The user name, exactly."),
    )
    patient = forms.IntegerField(
        label=gettext_lazy("Patient number"),
        required=False,
        min_value=1,
        help_text=gettext_lazy("Shown in the address of the patient's panel."),
    )
    action = forms.ChoiceField(
        label=gettext_lazy("Action"),
        required=False,
        choices=[("", gettext_lazy("Any")), *[(a, a) for a in ACTIONS]],
    )
    date_from = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def rows(self, site):
        data = self.cleaned_data
        rows = AuditEvent.objects.filter(site_id=site.pk).select_related(None)
        if data.get("user"):
            rows = rows.filter(actor_label=data["user"].strip())
        if data.get("patient"):
            rows = rows.filter(object_type="people.patient", object_id=str(data["patient"]))
        if data.get("action"):
            rows = rows.filter(action=data["action"])
        midnight = lambda day: dt.datetime.combine(day, dt.time(0), tzinfo=site.zone)  # noqa: E731
        if data.get("date_from"):
            rows = rows.filter(at__gte=midnight(data["date_from"]))
        if data.get("date_to"):
            rows = rows.filter(at__lt=midnight(data["date_to"] + dt.timedelta(days=1)))
        return rows.order_by("-at", "-id")

    def query(self) -> dict:
        return {name: self.data[name] for name in self.fields if self.data.get(name)}


@guard.requires("view_audit")
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilter(request.GET)
    page, next_url, cursor_error = [], "", ""
    text = request.GET.get("before", "")
    cursor = parse_cursor(text) if text else None
    if text and cursor is None:
        cursor_error = _("That page link is not valid any more; showing the first page.")
    if form.is_valid():
        rows = form.rows(request.site)
        if cursor:
            at, ident = cursor
            rows = rows.filter(at__lte=at).filter(Q(at__lt=at) | Q(at=at, id__lt=ident))
        page = list(rows[: PAGE_SIZE + 1])
        if len(page) > PAGE_SIZE:
            page, last = page[:PAGE_SIZE], page[PAGE_SIZE - 1]
            before = make_cursor(last.at, last.pk)
            next_url = "?" + urlencode({**form.query(), "before": before})
    trail.record(
        request.user,
        "list",
        object_type="audit.auditevent",
        site_id=request.site.pk,
        detail={"filters": sorted(form.query())},
    )
    context = {
        "form": form,
        "events": page,
        "next_url": next_url,
        "cursor_error": cursor_error,
        "first_url": "?" + urlencode(form.query()) if cursor else "",
    }
    return render(request, "staff/audit_log.html", context)
