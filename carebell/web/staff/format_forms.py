"""The message-format screens' forms: the list's filters and the editor (SPEC §6)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from carebell.core.vocab import FORMAT_KINDS
from carebell.messaging.models import MessageTemplate
from carebell.people.models import LANGUAGES
from carebell.web.staff.forms import CHANNELS
from carebell.web.staff.templatetags.staff import kind_label

ANY = [("", _("Any"))]


def kind_choices() -> list[tuple[str, str]]:
    return [(kind.value, kind_label(kind.value)) for kind in FORMAT_KINDS]


class FormatFilterForm(forms.Form):
    channel = forms.ChoiceField(label=_("Method"), required=False)
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    language = forms.ChoiceField(label=_("Language"), required=False)
    subject = forms.CharField(label=_("Subject or name"), required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = ANY + CHANNELS
        self.fields["kind"].choices = ANY + kind_choices()
        self.fields["language"].choices = ANY + list(LANGUAGES)

    def filter(self, formats):
        if not self.is_valid():
            return formats
        data = self.cleaned_data
        for name in ("channel", "kind", "language"):
            if data[name]:
                formats = formats.filter(**{name: data[name]})
        if data["subject"]:
            text = data["subject"]
            formats = formats.filter(subject__icontains=text) | formats.filter(name__icontains=text)
        return formats


class FormatForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = [
            "channel", "kind", "language", "name", "subject", "body", "html_body",
            "is_group", "in_use",
        ]  # fmt: skip
        labels = {
            "channel": _("Method"),
            "kind": _("Kind"),
            "language": _("Language"),
            "name": _("Name"),
            "subject": _("Subject"),
            "body": _("Message"),
            "html_body": _("HTML version (email)"),
            "is_group": _("Group message"),
            "in_use": _("In use"),
        }
        help_texts = {
            "name": _("How staff find this format in lists."),
            "subject": _("The email's subject line; for texts and calls, a label only."),
            "body": _("Plain text: the text message, the call script or the email's text part."),
            "html_body": _("Optional. Leave empty to send the text part only."),
            "is_group": _("Meant for group sends; each person still gets their own copy."),
            "in_use": _(
                "The format automated messages use for this kind, method and language. "
                "Putting this one in use takes over from the one in use now."
            ),
        }
        widgets = {
            "body": forms.Textarea(attrs={"rows": 8, "spellcheck": "true"}),
            "html_body": forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        }

    def __init__(self, *args, site, **kwargs):
        chosen = kwargs.get("initial") or {}
        super().__init__(*args, **kwargs)
        self.instance.site = site
        self.fields["channel"].choices = CHANNELS
        self.fields["kind"].choices = kind_choices()
        self.fields["language"].choices = list(LANGUAGES)
        self.fields["subject"].required = False
        self.fields["body"].required = False  # judged by formats.service with its wording
        self.fields["body"].widget.attrs["data-body"] = ""
        if self.instance.pk is None:
            for name, value in (("channel", "sms"), ("kind", "general"), ("language", "en")):
                self.initial[name] = self.initial.get(name) or value
            self.initial["in_use"] = bool(chosen.get("in_use"))


class PreviewForm(forms.Form):
    """What the live preview endpoint reads (the editor's own fields)."""

    channel = forms.ChoiceField(choices=CHANNELS)
    kind = forms.ChoiceField()
    language = forms.ChoiceField(choices=LANGUAGES)
    subject = forms.CharField(required=False, max_length=200, strip=False)
    body = forms.CharField(required=False, max_length=100_000, strip=False)
    html_body = forms.CharField(required=False, max_length=100_000, strip=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = kind_choices()
