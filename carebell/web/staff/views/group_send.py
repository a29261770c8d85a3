"""The group message wizard (SPEC §5.6), from the patient listing with its filters:
(1) channels and recipients, select all / none, rows lacking a preference for general
messages, a mobile or an email flagged and fixable in place; (2) the words, from a
saved format or one of the ten group messages sent last, optionally saved as a
format; (3) every rendered message, a page at a time, with the counts, SMS segments
and estimated cost — then to the queue, with a progress bar while the messages are
written. Every step calls carebell.sends.group; needs group_send."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from carebell.audit import trail
from carebell.core import senders
from carebell.core.vocab import ContactPointKind, Preference
from carebell.messaging.models import GroupRecipient, GroupSend
from carebell.people import actions
from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient
from carebell.sends import group as sends
from carebell.sends.group import texts_of
from carebell.sends.messages import LIMITS, Texts, check_texts, parse_channels
from carebell.sites import access
from carebell.web.staff import guard
from carebell.web.staff.views.patients import PatientFilter

PAGE = 50
CHANNEL_CHOICES = [("email", gettext_lazy("Email")), ("sms", gettext_lazy("SMS"))]


def _group(request: HttpRequest, group_id: int) -> GroupSend:
    mine = GroupSend.objects.filter(site=request.site).select_related("site__delivery")
    return access.get_object_or_404_for(request.user, mine, "site", pk=group_id)


def _errors(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [m for ms in error.message_dict.values() for m in ms]
    return list(error.messages)


def _after(request: HttpRequest) -> int:
    try:
        return max(0, int(request.GET.get("after", "0")))
    except ValueError:
        return 0


@require_POST
@guard.requires("group_send")
def start_from_listing(request: HttpRequest) -> HttpResponse:
    """The listing's "Group message": every patient its filters find, all selected."""
    form = PatientFilter(request.POST, site=request.site)
    if not form.is_valid():
        messages.error(request, _("Correct the search before sending a group message."))
        return redirect("staff:patients")
    try:
        group = sends.create_from_listing(
            request.site, form.rows(), filters=form.query(), by=request.user
        )
    except ValidationError as error:
        for text in _errors(error):
            messages.error(request, text)
        return redirect("staff:patients")
    return redirect("staff:group-recipients", group.pk)


# --- Step 1 -------------------------------------------------------------------------


def _recipient_rows(group: GroupSend, after: int):
    rows = (
        group.recipients.filter(patient_id__gt=after)
        .order_by("patient_id")
        .select_related("patient")
        .prefetch_related(
            Prefetch(
                "patient__contacts",
                queryset=Contact.objects.order_by("position", "id").prefetch_related(
                    Prefetch("points", queryset=ContactPoint.objects.order_by("kind")),
                    Prefetch(
                        "preferences",
                        queryset=ContactPreference.objects.filter(category="general"),
                    ),
                ),
            )
        )
    )
    page = list(rows[: PAGE + 1])
    more = len(page) > PAGE
    page = page[:PAGE]
    for row in page:
        contacts = list(row.patient.contacts.all())
        row.contact = contacts[0] if contacts else None
        points = {p.kind: p for p in row.contact.points.all()} if row.contact else {}
        prefs = list(row.contact.preferences.all()) if row.contact else []
        row.mobile = points.get(ContactPointKind.MOBILE)
        row.email = points.get(ContactPointKind.EMAIL)
        row.preference = prefs[0].value if prefs else ""
    return page, (page[-1].patient_id if more else None)


@guard.requires("group_send")
def recipients(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group(request, group_id)
    if group.status != GroupSend.Status.DRAFT:
        return redirect("staff:group-review", group.pk)
    after = _after(request)
    if request.method == "POST":
        return _save_recipients(request, group, after)
    page, next_after = _recipient_rows(group, after)
    context = {
        "group": group,
        "rows": page,
        "next_after": next_after,
        "after": after,
        "selected": group.recipients.filter(selected=True).count(),
        "total": group.recipients.count(),
        "channel_choices": CHANNEL_CHOICES,
        # A missing mobile or email matters only for a chosen channel (or before any).
        "want_sms": not group.channels or "sms" in group.channels,
        "want_email": not group.channels or "email" in group.channels,
        "preference_choices": [(p.value, p.value) for p in Preference if p.value],
        "step": 1,
    }
    trail.record(request.user, "view", group, detail={"page": "group recipients"})
    return render(request, "staff/group_recipients.html", context)


def _save_recipients(request: HttpRequest, group: GroupSend, after: int) -> HttpResponse:
    action = request.POST.get("action", "next")
    here = reverse("staff:group-recipients", args=[group.pk]) + (f"?after={after}" if after else "")
    try:
        if action in ("all", "none"):
            sends.select_all(group, action == "all", by=request.user)
            return redirect(here)
        shown = _ids(request.POST.getlist("shown"))
        picked = set(_ids(request.POST.getlist("pick"))) & set(shown)
        sends.select(group, picked, True, by=request.user)
        sends.select(group, set(shown) - picked, False, by=request.user)
        sends.set_channels(group, request.POST.getlist("channels"), by=request.user)
    except ValidationError as error:
        for text in _errors(error):
            messages.error(request, text)
        return redirect(here)
    if action == "page":
        to = _ids([request.POST.get("to", "")])
        base = reverse("staff:group-recipients", args=[group.pk])
        return redirect(f"{base}?after={to[0]}" if to else base)
    return redirect("staff:group-compose", group.pk)


def _ids(values) -> list[int]:
    out = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return out


class FixForm(forms.Form):
    """One flagged cell of step 1, put right in place through people.actions."""

    contact = forms.IntegerField()
    what = forms.ChoiceField(choices=[("preference", ""), ("mobile", ""), ("email", "")])
    value = forms.CharField(max_length=254, required=True, strip=True)


@require_POST
@guard.requires("group_send")
def fix_recipient(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group(request, group_id)
    back = request.POST.get("back", "")
    here = reverse("staff:group-recipients", args=[group.pk]) + (
        f"?after={int(back)}" if back.isdigit() else ""
    )
    if not access.can(request.user, "edit_patients", request.site):
        messages.error(
            request, _("Changing a patient's details needs the edit patients permission.")
        )
        return redirect(here)
    form = FixForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a value to save."))
        return redirect(here)
    in_group = GroupRecipient.objects.filter(group=group, patient_id=OuterRef("patient_id"))
    contacts = Contact.objects.filter(patient__site=request.site).filter(Exists(in_group))
    contact = access.get_object_or_404_for(
        request.user, contacts, "patient__site", pk=form.cleaned_data["contact"]
    )
    try:
        _fix(request, contact, form.cleaned_data["what"], form.cleaned_data["value"])
    except ValidationError as error:
        for text in _errors(error):
            messages.error(request, text)
        return redirect(here)
    messages.success(request, _("Saved."))
    return redirect(here)


def _fix(request, contact: Contact, what: str, value: str) -> None:
    site = request.site
    if what == "preference":
        if value not in {p.value for p in Preference if p.value}:
            raise ValidationError(_("Choose a preference."))
        actions.set_preference(contact, "general", value, by=request.user)
        return
    kind = ContactPointKind.MOBILE if what == "mobile" else ContactPointKind.EMAIL
    try:
        normalised = (
            senders.normalise_phone(value, site.phone_region or "US")
            if what == "mobile"
            else senders.normalise_email(value)
        )
    except ValueError:
        raise ValidationError(
            _("That is not a mobile number.")
            if what == "mobile"
            else _("That is not an email address.")
        ) from None
    point = ContactPoint.objects.filter(contact=contact, kind=kind).first() or ContactPoint(
        contact=contact, kind=kind
    )
    point.value, point.raw_value, point.is_valid = normalised, value, True
    actions.save_contact_point(point, by=request.user)


# --- Step 2 -------------------------------------------------------------------------


class ComposeForm(forms.Form):
    email_subject = forms.CharField(
        label=gettext_lazy("Email subject"), required=False, max_length=LIMITS["email_subject"]
    )
    email_body = forms.CharField(
        label=gettext_lazy("Email message"), required=False, max_length=LIMITS["email_body"],
        widget=forms.Textarea(attrs={"rows": 8}),
    )  # fmt: skip
    save_email = forms.BooleanField(
        label=gettext_lazy("Save this email as a format"), required=False
    )
    sms_body = forms.CharField(
        label=gettext_lazy("Text message"), required=False, max_length=LIMITS["sms_body"],
        widget=forms.Textarea(attrs={"rows": 4, "data-sms-count": "1"}),
    )  # fmt: skip
    save_sms = forms.BooleanField(label=gettext_lazy("Save this text as a format"), required=False)
    sms_subject = forms.CharField(
        label=gettext_lazy("Text format subject"), required=False, max_length=200,
        help_text=gettext_lazy("Needed to save the text as a format; it is not sent."),
    )  # fmt: skip


def _sources(group: GroupSend) -> list[dict]:
    """Saved formats first, then the ten group messages sent last."""
    out = []
    for template in sends.saved_formats(group.site):
        label = _("Format") + f": {template.name} ({template.get_channel_display()})"
        out.append({"label": label, "channel": template.channel, "subject": template.subject,
                    "body": template.body})  # fmt: skip
    for sent in sends.recent_texts(group.site):
        # In the site's zone (the guard makes it current), as every staff page shows times.
        when = (
            timezone.localtime(sent.started_at).strftime("%Y-%m-%d %H:%M")
            if sent.started_at
            else ""
        )
        if sent.email_body:
            out.append({"label": _("Sent") + f" {when}: {sent.email_subject[:50]} (email)",
                        "channel": "email", "subject": sent.email_subject,
                        "body": sent.email_body})  # fmt: skip
        if sent.sms_body:
            out.append({"label": _("Sent") + f" {when}: {sent.sms_body[:50]} (SMS)",
                        "channel": "sms", "subject": "", "body": sent.sms_body})  # fmt: skip
    for index, source in enumerate(out):
        source["id"] = index
    return out


@guard.requires("group_send")
def compose(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group(request, group_id)
    if group.status != GroupSend.Status.DRAFT:
        return redirect("staff:group-review", group.pk)
    if not group.channels:
        messages.error(request, _("Choose email, SMS or both first."))
        return redirect("staff:group-recipients", group.pk)
    sources = _sources(group)
    initial = {"email_subject": group.email_subject, "email_body": group.email_body,
               "sms_body": group.sms_body}  # fmt: skip
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "back":
        return redirect("staff:group-recipients", group.pk)
    if action == "source":  # "Use" without JavaScript: the words of the chosen source
        return _with_source(request, group, sources, initial)
    form = ComposeForm(guard.posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        texts = Texts(data["email_subject"], data["email_body"], data["sms_body"])
        try:
            sends.compose(
                group, texts, save_email=data["save_email"],
                save_sms_subject=data["sms_subject"] if data["save_sms"] else None, by=request.user,
            )  # fmt: skip
        except ValidationError as error:
            for field, texts_ in error.message_dict.items():
                for text in texts_:
                    form.add_error(field if field in form.fields else None, text)
        else:
            return redirect("staff:group-review", group.pk)
    context = {"group": group, "form": form, "sources": sources, "step": 2,
               "email": "email" in group.channels, "sms": "sms" in group.channels}  # fmt: skip
    return render(request, "staff/group_compose.html", context)


def _with_source(request: HttpRequest, group: GroupSend, sources: list, initial: dict):
    """Step 2 again, its fields as posted and the chosen source's words in its channel."""
    filled = {**initial, **{k: request.POST.get(k, "") for k in ("email_subject", "email_body",
                                                                  "sms_body")}}  # fmt: skip
    chosen = _ids([request.POST.get("source", "")])
    source = sources[chosen[0]] if chosen and 0 <= chosen[0] < len(sources) else None
    if source is not None and source["channel"] == "email":
        filled.update(email_subject=source["subject"], email_body=source["body"])
    elif source is not None:
        filled.update(sms_body=source["body"])
    form = ComposeForm(initial=filled)
    context = {"group": group, "form": form, "sources": sources, "step": 2,
               "email": "email" in group.channels, "sms": "sms" in group.channels}  # fmt: skip
    return render(request, "staff/group_compose.html", context)


# --- Step 3 -------------------------------------------------------------------------


@guard.requires("group_send")
def review(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group(request, group_id)
    after = _after(request)
    if group.status == GroupSend.Status.DRAFT and not (group.email_body or group.sms_body):
        return redirect("staff:group-compose", group.pk)
    # Once sent, the messages are in the queue (and may have moved on): the page then
    # shows the send's progress and points there, rather than planning them again.
    draft = group.status == GroupSend.Status.DRAFT
    planned, next_after = (
        sends.preview(group, after=after, limit=PAGE, by=request.user) if draft else ([], None)
    )
    figures = sends.summary(group, by=request.user) if draft else {}
    names = dict(
        Patient.objects.filter(id__in={p.decision.patient_id for p in planned}).values_list(
            "id", "external_id"
        )
    )
    rows = [
        {"planned": p, "why": [r.message for r in p.decision.reasons],
         "external_id": names.get(p.decision.patient_id, "")}
        for p in planned
    ]  # fmt: skip
    trail.record(request.user, "view", group, detail={"page": "group review"})
    # What the words may get wrong (a missing STOP hint, characters forcing UCS-2…),
    # shown beside the send button rather than refusing it.
    warnings = (
        [p.message for p in check_texts(texts_of(group), parse_channels(group.channels),
                                        group.site) if not p.is_error]
        if figures else []
    )  # fmt: skip
    context = {
        "group": group, "rows": rows, "figures": figures, "after": after, "warnings": warnings,
        "next_after": next_after, "step": 3, "progress": sends.progress(group),
    }  # fmt: skip
    return render(request, "staff/group_review.html", context)


@require_POST
@guard.requires("group_send")
def send(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group(request, group_id)
    try:
        group = sends.start(group, by=request.user)
    except ValidationError as error:
        for text in _errors(error):
            messages.error(request, text)
        return redirect("staff:group-review", group.pk)
    messages.success(request, _("The messages are going to the queue."))
    return redirect("staff:group-review", group.pk)


@guard.requires("group_send")
def progress(request: HttpRequest, group_id: int) -> JsonResponse:
    """GET: how far the send has got. POST (the page's poll while it shows the bar):
    write for about a second more first — the worker does it for a page closed."""
    group = _group(request, group_id)
    if request.method == "POST":
        return JsonResponse(sends.step(group, by=request.user))
    return JsonResponse(sends.progress(group))
