"""A one-off message to one patient, from the patient panel (SPEC §5.6): write it,
choose the contact and the channel, preview it rendered with its SMS segments and
whether it may go, and send it to the queue through carebell.sends.one_off (the
outbox and its checks; audited). Needs group_send."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carebell.people.models import Contact, Patient
from carebell.sends import one_off as sends
from carebell.sends.messages import LIMITS, Texts
from carebell.sites import access
from carebell.web.staff import guard


class OneOffForm(forms.Form):
    contact = forms.TypedChoiceField(label=gettext_lazy("To"), coerce=int)
    channel = forms.ChoiceField(
        label=gettext_lazy("By"),
        choices=[("sms", gettext_lazy("SMS")), ("email", gettext_lazy("Email"))],
        widget=forms.RadioSelect,
    )
    subject = forms.CharField(
        label=gettext_lazy("Email subject"), required=False, max_length=LIMITS["email_subject"]
    )
    body = forms.CharField(
        label=gettext_lazy("Message"), max_length=LIMITS["email_body"],
        widget=forms.Textarea(attrs={"rows": 5, "data-sms-count": "1"}),
    )  # fmt: skip
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, data=None, *, contacts, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["contact"].choices = [
            (c.pk, f"{c.first_name} {c.last_name} ({c.get_relationship_display()})")
            for c in contacts
        ]

    def texts(self) -> Texts:
        data = self.cleaned_data
        if data["channel"] == "email":
            return Texts(email_subject=data["subject"], email_body=data["body"])
        return Texts(sms_body=data["body"])


@guard.requires("group_send")
def one_off(request: HttpRequest, patient_id: int) -> HttpResponse:
    mine = Patient.objects.filter(site=request.site).select_related("site__delivery")
    patient = access.get_object_or_404_for(request.user, mine, "site", pk=patient_id)
    contacts = list(Contact.objects.filter(patient=patient).order_by("position", "id"))
    initial = {"token": secrets.token_urlsafe(16), "channel": "sms",
               "contact": contacts[0].pk if contacts else None}  # fmt: skip
    form = OneOffForm(guard.posted(request), contacts=contacts, initial=initial)
    shown = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if request.POST.get("action") == "send":
                message = sends.send(
                    patient, contact_id=data["contact"], channel=data["channel"],
                    texts=form.texts(), token=data["token"], by=request.user,
                )  # fmt: skip
                if message.status == "blocked":
                    text = _("The message is stored blocked (%(why)s): it will not go.")
                    messages.warning(request, text % {"why": message.block_reason})
                else:
                    messages.success(request, _("The message is in the queue."))
                return redirect("staff:patient", patient.pk)
            shown = sends.preview(
                patient, contact_id=data["contact"], channel=data["channel"],
                texts=form.texts(), by=request.user,
            )  # fmt: skip
        except ValidationError as error:
            for field, texts in error.message_dict.items():
                for text in texts:
                    form.add_error(_field(field), text)
    context = {"patient": patient, "form": form, "shown": shown, "has_contacts": bool(contacts)}
    return render(request, "staff/one_off.html", context)


def _field(name: str) -> str | None:
    """The form field an entry point's error names (email_subject → subject …)."""
    if name.endswith("_subject"):
        return "subject"
    if name.endswith("_body"):
        return "body"
    return name if name in ("contact", "channel", "token") else None
