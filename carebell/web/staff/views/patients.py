"""Patients (SPEC §3, §11): the list with search and filters, one page at a time by
keyset (last name, first name, id) with no count, and each patient's messaging panel —
contacts in order, their contact points and preferences, the consent history, every
message about the patient with its reasons, and what planning would do in the next
30 days. Needs view_patients; every page is audited."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django import forms
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carebell.audit import trail
from carebell.core import senders
from carebell.core.vocab import Category, ContactPointKind, Preference
from carebell.messaging.models import PENDING, OutboxMessage
from carebell.people.models import (
    LANGUAGES,
    ConsentRecord,
    Contact,
    ContactPoint,
    ContactPreference,
    Patient,
)
from carebell.planning import forecast
from carebell.planning.daily import DAILY_KINDS
from carebell.sites import access
from carebell.web.staff import engine, guard
from carebell.web.staff.templatetags.staff import STATUS_LABELS

PAGE_SIZE = 50
PANEL_MESSAGES = 200
YES_NO = [("", gettext_lazy("Any")), ("yes", gettext_lazy("Yes")), ("no", gettext_lazy("No"))]


class PatientFilter(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("Last name, or last and first name."),
    )
    birth_date = forms.DateField(
        label=gettext_lazy("Date of birth"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    phone = forms.CharField(label=gettext_lazy("Phone"), required=False, max_length=40)
    email = forms.CharField(label=gettext_lazy("Email"), required=False, max_length=254)
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        choices=[("", gettext_lazy("Any")), *LANGUAGES],
    )
    has_mobile = forms.ChoiceField(
        label=gettext_lazy("Has a mobile"), required=False, choices=YES_NO
    )
    has_email = forms.ChoiceField(
        label=gettext_lazy("Has an email"), required=False, choices=YES_NO
    )
    category = forms.ChoiceField(
        label=gettext_lazy("Preference for"),
        required=False,
        choices=[
            ("", gettext_lazy("Any")),
            *[(c.value, c.value.replace("_", " ")) for c in Category],
        ],
    )
    preference = forms.ChoiceField(
        label=gettext_lazy("Preference"),
        required=False,
        choices=[
            ("", gettext_lazy("Any")),
            ("unset", gettext_lazy("Not set")),
            *[(p.value, p.value) for p in Preference if p.value],
        ],
    )

    def __init__(self, data=None, *, site, **kwargs):
        super().__init__(data, **kwargs)
        self.site = site

    def clean_phone(self) -> str:
        value = self.cleaned_data["phone"].strip()
        if not value:
            return ""
        try:
            return senders.normalise_phone(value, self.site.phone_region or "US")
        except ValueError:
            raise forms.ValidationError(_("That is not a phone number.")) from None

    def clean_email(self) -> str:
        value = self.cleaned_data["email"].strip()
        if not value:
            return ""
        try:
            return senders.normalise_email(value)
        except ValueError:
            raise forms.ValidationError(_("That is not an email address.")) from None

    def clean(self):
        data = super().clean()
        if data.get("preference") and not data.get("category"):
            self.add_error("category", _("Choose which preference to look at."))
        return data

    def rows(self):
        data = self.cleaned_data
        rows = Patient.objects.filter(site=self.site)
        if name := data.get("name", "").strip():
            last, _sep, first = name.replace(",", " ").partition(" ")
            rows = rows.filter(last_name__istartswith=last.strip())
            if first.strip():
                rows = rows.filter(first_name__istartswith=first.strip())
        if data.get("birth_date"):
            rows = rows.filter(birth_date=data["birth_date"])
        if data.get("language"):
            rows = rows.filter(language=data["language"])
        points = ContactPoint.objects.filter(contact__patient=OuterRef("pk"))
        for value in (data.get("phone"), data.get("email")):
            if value:
                rows = rows.filter(Exists(points.filter(value=value)))
        for field, kind in (
            ("has_mobile", ContactPointKind.MOBILE),
            ("has_email", ContactPointKind.EMAIL),
        ):
            if data.get(field):
                exists = Exists(points.filter(kind=kind, is_valid=True))
                rows = rows.filter(exists if data[field] == "yes" else ~exists)
        if category := data.get("category"):
            rows = rows.filter(self._preference(category, data.get("preference", "")))
        return rows.order_by("last_name", "first_name", "id")

    @staticmethod
    def _preference(category: str, value: str) -> Q:
        prefs = ContactPreference.objects.filter(contact__patient=OuterRef("pk"), category=category)
        if value == "unset":
            return ~Exists(prefs.exclude(value=""))
        return Exists(prefs.filter(value=value)) if value else Exists(prefs.exclude(value=""))

    def query(self) -> dict:
        return {name: self.data[name] for name in self.fields if self.data.get(name)}


def parse_cursor(text: str) -> tuple[str, str, int] | None:
    """'<last>\\x1f<first>\\x1f<id>' as sent back by the next-page link."""
    parts = (text or "").split("\x1f")
    if len(parts) != 3:
        return None
    try:
        return parts[0], parts[1], int(parts[2])
    except ValueError:
        return None


def _after(rows, cursor: tuple[str, str, int]):
    last, first, ident = cursor
    # last_name >= last lets the (site, last_name, first_name) index start there.
    return rows.filter(last_name__gte=last).filter(
        Q(last_name__gt=last)
        | Q(last_name=last, first_name__gt=first)
        | Q(last_name=last, first_name=first, id__gt=ident)
    )


@guard.requires("view_patients")
def patient_list(request: HttpRequest) -> HttpResponse:
    form = PatientFilter(request.GET, site=request.site)
    page, next_url, cursor_error = [], "", ""
    cursor_text = request.GET.get("after", "")
    cursor = parse_cursor(cursor_text) if cursor_text else None
    if cursor_text and cursor is None:
        cursor_error = _("That page link is not valid any more; showing the first page.")
    if form.is_valid():
        rows = form.rows().only("id", "first_name", "last_name", "birth_date", "language")
        if cursor:
            rows = _after(rows, cursor)
        page = list(rows[: PAGE_SIZE + 1])
        if len(page) > PAGE_SIZE:
            page = page[:PAGE_SIZE]
            last = page[-1]
            key = "\x1f".join([last.last_name, last.first_name, str(last.pk)])
            next_url = "?" + urlencode({**form.query(), "after": key})
    trail.record(
        request.user,
        "list",
        object_type="people.patient",
        site_id=request.site.pk,
        detail={"filters": sorted(form.query())},
    )
    context = {
        "form": form,
        "patients": page,
        "next_url": next_url,
        "first_url": "?" + urlencode(form.query()) if cursor else "",
        "cursor_error": cursor_error,
        # The listing's "Group message" carries its filters (SPEC §5.6).
        "can_group_send": guard.can(request, "group_send") and form.is_valid(),
        "filter_items": sorted(form.query().items()),
    }
    return render(request, "staff/patient_list.html", context)


def _contacts(patient: Patient) -> list[Contact]:
    contacts = (
        Contact.objects.filter(patient=patient)
        .order_by("position", "id")
        .prefetch_related(
            Prefetch("points", queryset=ContactPoint.objects.order_by("kind")),
            Prefetch("preferences", queryset=ContactPreference.objects.order_by("category")),
        )
    )
    today = timezone.localdate()
    contacts = list(contacts)
    for contact in contacts:
        contact.ended = contact.end_date is not None and contact.end_date <= today
        contact.may_receive = contact.authority != "none" and not contact.ended
    return contacts


@guard.requires("view_patients")
def patient_panel(request: HttpRequest, patient_id: int) -> HttpResponse:
    mine = Patient.objects.filter(site=request.site).select_related("site__delivery")
    patient = access.get_object_or_404_for(request.user, mine, "site", pk=patient_id)
    now = timezone.now()
    contacts = _contacts(patient)
    consents = (
        ConsentRecord.objects.filter(contact_point__contact__patient=patient)
        .defer("signature_image")
        .select_related("captured_by", "contact_point__contact")
        .order_by("-recorded_at", "-id")
    )
    stored = list(
        OutboxMessage.objects.filter(patient=patient)
        .order_by("-planned_at", "-id")
        .only(
            "id",
            "planned_at",
            "channel",
            "kind",
            "status",
            "block_reason",
            "reasons",
            "to_address",
            "entity_type",
            "entity_name",
            "attempts",
        )[:PANEL_MESSAGES]
    )
    for message in stored:
        message.why = engine.reason_sentences(message.reasons)
        message.pending = message.status in PENDING
    lines = [_line(found, contacts) for found in forecast.forecast_patient(patient, now)]
    trail.record(request.user, "view", patient, detail={"page": "messaging panel"})
    context = {
        "patient": patient,
        "contacts": contacts,
        "consents": list(consents),
        "messages_stored": stored,
        "truncated": len(stored) == PANEL_MESSAGES,
        "planned": [line for line in lines if line["goes"]],
        "not_planned": [line for line in lines if not line["goes"]],
        "plan_days": forecast.FORECAST_DAYS,
        "can_queue": guard.can(request, "view_queue"),
        "can_message": guard.can(request, "group_send"),
        "now": now,
        "horizon": now + dt.timedelta(days=forecast.FORECAST_DAYS),
    }
    return render(request, "staff/patient_panel.html", context)


def _line(found: forecast.Forecast, contacts: list[Contact]) -> dict:
    """A forecast decision as the panel shows it: when, who, why in sentences, and the
    queue's row for it if there is one. One the planner would plan but whose row was
    deleted from the queue or blocked does not go: that row keeps its occurrence."""
    names = {c.pk: f"{c.first_name} {c.last_name}" for c in contacts}
    decision, held = found.decision, found.held
    why = [r.message for r in decision.reasons]
    if held is not None and held.ended:
        # Staff deleted it, or it was blocked: its row keeps the occurrence, so the
        # planner will not plan it again (its own reasons are in the messages below).
        status = STATUS_LABELS.get(held.status, held.status)
        why.append(_("Its message is in the queue as “%(status)s”: it will not be sent.")
                   % {"status": status})  # fmt: skip
    at = found.at
    # The daily batch stores its kinds on their day; the rest the next pass stores.
    later = (
        decision.kind in DAILY_KINDS
        and at is not None
        and timezone.localtime(at).date() > timezone.localdate()
    )
    return {
        "decision": decision,
        "at": at,
        # A day's event (a birthday, a refill's due date) is at the site's midnight.
        "day_only": at is not None and timezone.localtime(at).time() == dt.time(0),
        "who": names.get(decision.contact_id, ""),
        "why": why,
        "held": held,
        "stored_later": later,
        "goes": decision.planned and not (held is not None and held.ended),
    }
