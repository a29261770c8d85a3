"""Consent and verification in the staff app (SPEC §3.5).

From a patient's panel: record a consent or its withdrawal (paper, verbal, web form)
with the site's wording shown, send a verification code to a mobile or an email and
enter the code the patient reads back. Per site: the consent ledger over a period and
its CSV export (what a carrier asks for in a messaging campaign review), and a new
version of the site's consent wording.

Every write goes through carebell.people.consent / carebell.people.verification;
every object is looked up within the staff member's current site, so another site's
patient, contact point or ledger is a 404. Recording needs edit_patients, reading
the ledger view_patients, a new wording edit_delivery_settings.
"""

from __future__ import annotations

import csv
import datetime as dt
import re

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from carebell.audit import trail
from carebell.core.vocab import Channel, ConsentSource
from carebell.people import consent, verification
from carebell.people.models import ContactPoint, Patient, VerificationCode
from carebell.sites import access
from carebell.web.staff import guard

LEDGER_PAGE = 200
EXPORT_CHUNK = 2000
DEFAULT_DAYS = 30
CHANNEL_LABELS = {
    Channel.SMS: gettext_lazy("Text messages (SMS)"),
    Channel.CALL: gettext_lazy("Automated calls"),
    Channel.EMAIL: gettext_lazy("Email"),
}
SOURCE_LABELS = {
    ConsentSource.PAPER: gettext_lazy("Paper form"),
    ConsentSource.VERBAL: gettext_lazy("Verbal (in person or by phone)"),
    ConsentSource.WEB_FORM: gettext_lazy("Web form"),
    ConsentSource.SIGNATURE_PAD: gettext_lazy("Signature pad"),
    ConsentSource.SMS_KEYWORD: gettext_lazy("Text message keyword"),
    ConsentSource.IMPORT: gettext_lazy("Import"),
}
#: What staff record by hand; the pad, keywords and imports have their own doors.
STAFF_SOURCES = (ConsentSource.PAPER, ConsentSource.VERBAL, ConsentSource.WEB_FORM)
OUTCOME_TEXT = {
    verification.Outcome.VERIFIED: gettext_lazy("Verified: the code was right."),
    verification.Outcome.WRONG: gettext_lazy("That code is not right."),
    verification.Outcome.LOCKED: gettext_lazy(
        "Too many wrong tries: this code no longer works. Send a new one."
    ),
    verification.Outcome.EXPIRED: gettext_lazy("That code has expired. Send a new one."),
    verification.Outcome.NO_CODE: gettext_lazy("No code is waiting for this number or email."),
}


# Forms -------------------------------------------------------------------------------------


class ConsentForm(forms.Form):
    point = forms.TypedChoiceField(label=gettext_lazy("Phone or email"), coerce=int)
    channel = forms.ChoiceField(
        label=gettext_lazy("For"), choices=[(c.value, label) for c, label in CHANNEL_LABELS.items()]
    )
    action = forms.ChoiceField(
        label=gettext_lazy("The person"),
        widget=forms.RadioSelect,
        choices=[
            ("grant", gettext_lazy("gives consent")),
            ("revoke", gettext_lazy("withdraws consent")),
        ],
    )
    source = forms.ChoiceField(
        label=gettext_lazy("How"), choices=[(s.value, SOURCE_LABELS[s]) for s in STAFF_SOURCES]
    )
    evidence = forms.CharField(
        label=gettext_lazy("Reference"),
        required=False,
        max_length=300,
        help_text=gettext_lazy("Optional: the form's number, where it is filed, who read it out."),
    )
    wording_version = forms.CharField(widget=forms.HiddenInput, max_length=32)
    shown = forms.BooleanField(
        label=gettext_lazy("The person was shown or read the wording above."), required=False
    )

    def __init__(self, data=None, *, points, version: str, **kwargs):
        super().__init__(data, initial={"wording_version": version}, **kwargs)
        self.version = version
        self.points = {p.pk: p for p in points}
        self.fields["point"].choices = [(p.pk, point_label(p)) for p in points]

    def clean(self):
        data = super().clean()
        if data.get("wording_version") and data["wording_version"] != self.version:
            raise forms.ValidationError(
                _("The site's wording changed while this page was open: read the new one.")
            )
        if data.get("action") == "grant" and not data.get("shown"):
            self.add_error("shown", _("Consent counts only for words the person saw or heard."))
        return data


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code the patient reads out"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean_code(self) -> str:
        code = re.sub(r"\s", "", self.cleaned_data["code"])
        if not re.fullmatch(r"\d{6}", code):
            raise forms.ValidationError(_("A code is 6 digits."))
        return code


class PeriodForm(forms.Form):
    start = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError(_("The period ends before it starts."))
        return data

    def bounds(self, zone) -> tuple[dt.datetime, dt.datetime]:
        """The period as UTC instants (start inclusive, end exclusive), days of the
        site's zone; the last 30 days when left blank."""
        today = timezone.now().astimezone(zone).date()
        end = self.cleaned_data.get("end") or today
        start = self.cleaned_data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        return _midnight(start, zone), _midnight(end + dt.timedelta(days=1), zone)


class WordingForm(forms.Form):
    version = forms.CharField(label=gettext_lazy("Version"), max_length=32)
    wording = forms.CharField(
        label=gettext_lazy("Wording"), max_length=consent.MAX_WORDING, widget=forms.Textarea
    )


def _midnight(day: dt.date, zone) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def point_label(point: ContactPoint) -> str:
    contact = point.contact
    kind = point.get_kind_display().capitalize()
    return f"{kind} {point.value} — {contact.first_name} {contact.last_name}"


# Lookups within the current site -----------------------------------------------------------


def _patient(request: HttpRequest, patient_id: int) -> Patient:
    mine = Patient.objects.filter(site=request.site)
    return access.get_object_or_404_for(request.user, mine, "site", pk=patient_id)


def _points(patient: Patient) -> list[ContactPoint]:
    return list(
        ContactPoint.objects.filter(contact__patient=patient)
        .select_related("contact")
        .order_by("contact__position", "kind", "id")
    )


def _point(patient: Patient, point_id: int) -> ContactPoint:
    point = next((p for p in _points(patient) if p.pk == point_id), None)
    if point is None:
        raise Http404
    return point


# Consent from the panel ------------------------------------------------------------------


@guard.requires("edit_patients")
def record(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(request, patient_id)
    points = [p for p in _points(patient) if p.is_valid]
    version, wording = consent.current_wording(request.site)
    form = ConsentForm(guard.posted(request), points=points, version=version)
    if request.method == "GET" and request.GET.get("point", "").isdigit():
        form.initial["point"] = int(request.GET["point"])
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            consent.record_consent(
                form.points[data["point"]], data["channel"], data["action"],
                source=data["source"], wording=wording, wording_version=version,
                by=request.user, evidence=data["evidence"],
            )  # fmt: skip
        except ValidationError as error:
            _add_errors(form, error)
        else:
            done = (
                _("Consent recorded.") if data["action"] == "grant" else _("Withdrawal recorded.")
            )
            messages.success(request, done)
            return redirect(reverse("staff:patient", args=[patient.pk]) + "#consent")
    trail.record(request.user, "view", patient, detail={"page": "record consent"})
    context = {"patient": patient, "form": form, "wording": wording, "version": version,
               "has_points": bool(points)}  # fmt: skip
    status = 400 if request.method == "POST" else 200
    return render(request, "staff/consent_form.html", context, status=status)


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)


# Verification codes ----------------------------------------------------------------------


@guard.requires("edit_patients")
@require_POST
def send_code(request: HttpRequest, patient_id: int, point_id: int) -> HttpResponse:
    point = _point(_patient(request, patient_id), point_id)
    try:
        verification.issue_code(point, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        where = _("by text") if point.kind == "mobile" else _("by email")
        messages.success(request, _("A code was sent %(where)s to %(value)s.") % {
            "where": where, "value": point.value})  # fmt: skip
    return redirect("staff:verify-point", patient_id=patient_id, point_id=point.pk)


@guard.requires("edit_patients")
def verify(request: HttpRequest, patient_id: int, point_id: int) -> HttpResponse:
    patient = _patient(request, patient_id)
    point = _point(patient, point_id)
    form = CodeForm(guard.posted(request))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            checked = verification.check_code(
                point, form.cleaned_data["code"], method=verification.Method.STAFF, by=request.user
            )
            if checked.verified:
                messages.success(request, OUTCOME_TEXT[checked.outcome])
                return redirect(reverse("staff:patient", args=[patient.pk]) + "#contacts")
            form.add_error("code", _outcome_text(checked))
    point.refresh_from_db()
    trail.record(request.user, "view", point, detail={"page": "verification"})
    context = {"patient": patient, "point": point, "form": form,
               "code": _code_state(point), "label": point_label(point),
               "can_send": verification.channel_for(point) is not None}  # fmt: skip
    return render(request, "staff/verify.html", context, status=status)


def _outcome_text(checked: verification.Checked) -> str:
    text = str(OUTCOME_TEXT[checked.outcome])
    if checked.outcome is verification.Outcome.WRONG:
        text += " " + _("%(left)d tries left.") % {"left": checked.tries_left}
    return text


def _code_state(point: ContactPoint) -> dict | None:
    code = VerificationCode.objects.filter(contact_point=point).order_by("-created_at").first()
    if code is None:
        return None
    now = timezone.now()
    return {
        "sent_at": code.created_at,
        "expires_at": code.expires_at,
        "used": code.used_at is not None,
        "expired": now >= code.expires_at,
        "tries_left": max(0, verification.MAX_WRONG_TRIES - code.wrong_tries),
        "for_old_value": code.address != point.value,
        "sent_last_hour": verification.codes_sent_last_hour(point, now),
        "per_hour": verification.MAX_CODES_PER_HOUR,
    }


# The ledger ------------------------------------------------------------------------------


@guard.requires("view_patients")
def ledger(request: HttpRequest) -> HttpResponse:
    site = request.site
    form = PeriodForm(request.GET)  # blank: the last 30 days
    rows, start, end = [], None, None
    if form.is_valid():
        start, end = form.bounds(site.zone)
        rows = list(consent.ledger(site, start, end)[: LEDGER_PAGE + 1])
    trail.record(request.user, "list", object_type="people.consentrecord", site_id=site.pk,
                 detail={"page": "consent ledger"})  # fmt: skip
    version, wording = consent.current_wording(site)
    context = {
        "form": form,
        "records": rows[:LEDGER_PAGE],
        "more": len(rows) > LEDGER_PAGE,
        "start": start,
        "last_day": end - dt.timedelta(days=1) if end else None,
        "export_query": request.GET.urlencode(),
        "version": version,
        "wording": wording,
        "wording_form": WordingForm(initial={"wording": wording}),
        "can_edit_wording": guard.can(request, "edit_delivery_settings"),
        "source_labels": SOURCE_LABELS,
    }
    status = 200 if form.is_valid() else 400
    return render(request, "staff/consent_ledger.html", context, status=status)


CSV_HEADER = [
    "recorded_at", "time_zone", "patient", "contact", "address", "channel", "action", "source",
    "wording_version", "wording", "captured_by", "evidence", "signature_sha256", "record_id",
]  # fmt: skip


@guard.requires("view_patients")
def export(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET)
    if not form.is_valid():
        errors = " ".join(e for problems in form.errors.values() for e in problems)
        return HttpResponse(_("The period is not valid: %s") % errors, status=400,
                            content_type="text/plain; charset=utf-8")  # fmt: skip
    site = request.site
    start, end = form.bounds(site.zone)
    trail.record(request.user, "export", object_type="people.consentrecord", site_id=site.pk,
                 detail={"start": start.isoformat(), "end": end.isoformat()})  # fmt: skip
    rows = consent.ledger(site, start, end).select_related("contact_point__contact__patient")
    response = StreamingHttpResponse(_csv_lines(rows, site.zone), content_type="text/csv")
    name = f"consent-{site.pk}-{form.cleaned_data.get('end') or timezone.localdate()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(rows, zone):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for r in rows.iterator(chunk_size=EXPORT_CHUNK):
        contact = r.contact_point.contact
        patient = contact.patient
        actor = r.captured_by.get_username() if r.captured_by else r.captured_by_system
        yield writer.writerow([
            r.recorded_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), str(zone),
            _cell(f"{patient.first_name} {patient.last_name}"),
            _cell(f"{contact.first_name} {contact.last_name}"), r.address, r.channel, r.action,
            r.source, _cell(r.wording_version), _cell(r.wording), _cell(actor),
            _cell(r.evidence), r.signature_sha256, r.pk,
        ])  # fmt: skip


@guard.requires("edit_delivery_settings")
@require_POST
def publish_wording(request: HttpRequest) -> HttpResponse:
    form = WordingForm(request.POST)
    if form.is_valid():
        try:
            consent.publish_wording(request.site, form.cleaned_data["version"],
                                    form.cleaned_data["wording"], by=request.user)  # fmt: skip
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The new consent wording is in use."))
    else:
        messages.error(request, " ".join(e for p in form.errors.values() for e in p))
    return redirect("staff:consent-ledger")
