"""The automated-message editor's form: timing rows, channels, the message format per
channel and language, filters and the delivery override (SPEC §5)."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from carebell.core.vocab import Kind, OffsetUnit
from carebell.messaging.models import AutomatedMessage, MessageTemplate
from carebell.people.models import LANGUAGES
from carebell.web.staff.forms import CHANNELS, WEEKDAYS

#: The kinds whose timing is days or hours before the appointment.
TIMED_KINDS = frozenset({Kind.APPT_CONFIRMATION.value, Kind.APPT_REMINDER.value})
APPOINTMENT_FILTERED = frozenset(
    {Kind.APPT_CONFIRMATION.value, Kind.APPT_REMINDER.value, Kind.APPT_NO_SHOW.value}
)
PHARMACY_KINDS = frozenset(
    k.value
    for k in (
        Kind.RX_READY,
        Kind.RX_PICKUP_REMINDER,
        Kind.RX_PICKUP_CONFIRMATION,
        Kind.REFILL_DUE,
        Kind.REFILL_PAST_DUE,
        Kind.REFILL_ASK_PRESCRIBER,
    )
)
DRUG_CLASSES = [
    ("maintenance", _("Maintenance drugs")),
    ("non_maintenance", _("Non-maintenance drugs")),
    ("controlled", _("Controlled, C3–C5")),
    ("c2", _("Controlled, C2")),
]
UNITS = [(OffsetUnit.DAYS.value, _("days before")), (OffsetUnit.HOURS.value, _("hours before"))]
MAX_ROWS = 12
EMPTY_ROWS = 2
_ROW_KEY = re.compile(r"^offset-(\d+)-amount$")


class ListField(forms.CharField):
    """Names separated by commas: "Check-up, Vaccination"."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def clean(self, value):
        text = super().clean(value) or ""
        return [part.strip() for part in text.split(",") if part.strip()]


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, help_text=_("Shown to staff only."))
    enabled = forms.BooleanField(
        label=_("Enabled"), required=False, help_text=_("Only enabled messages are sent.")
    )
    channels = forms.MultipleChoiceField(
        choices=CHANNELS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Channels"),
        help_text=_("None ticked: the channels of the site's delivery settings."),
    )
    appointment_types = ListField(
        required=False,
        label=_("Appointment types"),
        help_text=_("Separated by commas. Empty: every type."),
    )
    providers = ListField(
        required=False, label=_("Providers"), help_text=_("Separated by commas. Empty: everyone.")
    )
    locations = ListField(
        required=False,
        label=_("Locations"),
        help_text=_("Separated by commas. Empty: every location."),
    )
    drug_classes = forms.MultipleChoiceField(
        choices=DRUG_CLASSES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Drug classes"),
        help_text=_("None ticked: as the site's refill settings say."),
    )
    override_window_start = forms.TimeField(
        required=False,
        label=_("Own window opens"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=_("Empty: the site's email and text window."),
    )
    override_window_end = forms.TimeField(
        required=False,
        label=_("Own window closes"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    override_days = forms.MultipleChoiceField(
        choices=WEEKDAYS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Own delivery days"),
        help_text=_("None ticked: the site's delivery days."),
    )

    def __init__(self, *args, rule: AutomatedMessage, **kwargs):
        kwargs.setdefault("initial", _initial(rule))
        super().__init__(*args, **kwargs)
        self.rule = rule
        if rule.kind not in APPOINTMENT_FILTERED:
            for name in ("appointment_types", "providers", "locations"):
                del self.fields[name]
        if rule.kind not in PHARMACY_KINDS:
            del self.fields["drug_classes"]
        self.row_count = self._row_count()
        if rule.kind in TIMED_KINDS:
            for index in range(self.row_count):
                self.fields[f"offset-{index}-amount"] = forms.IntegerField(
                    required=False, min_value=1, max_value=60, label=_("How long before")
                )
                self.fields[f"offset-{index}-unit"] = forms.ChoiceField(
                    choices=UNITS, required=False, label=_("Unit")
                )
        self.format_keys = []
        formats = MessageTemplate.objects.filter(site_id=rule.site_id, kind=rule.kind)
        for channel, channel_label in CHANNELS:
            for language, language_label in LANGUAGES:
                options = [f for f in formats if f.channel == channel and f.language == language]
                if not options:
                    continue
                name = f"format-{channel}-{language}"
                self.fields[name] = forms.TypedChoiceField(
                    coerce=int,
                    choices=[(f.pk, f.name) for f in options],
                    label=f"{channel_label} · {language_label}",
                    initial=next((f.pk for f in options if f.in_use), options[0].pk),
                    required=True,
                )
                self.format_keys.append((name, channel, language))

    def _row_count(self) -> int:
        if self.is_bound:
            indexes = [int(m.group(1)) for key in self.data if (m := _ROW_KEY.match(key))]
            return min(MAX_ROWS, max(indexes, default=-1) + 1)
        return min(MAX_ROWS, len(self.rule.offsets or []) + EMPTY_ROWS)

    def offset_rows(self):
        return [
            (index, self[f"offset-{index}-amount"], self[f"offset-{index}-unit"])
            for index in range(self.row_count)
            if f"offset-{index}-amount" in self.fields
        ]

    def format_fields(self):
        return [self[name] for name, _channel, _language in self.format_keys]

    def filter_fields(self):
        names = ("appointment_types", "providers", "locations", "drug_classes")
        return [self[name] for name in names if name in self.fields]

    def clean(self):
        data = super().clean()
        offsets = []
        for index in range(self.row_count):
            amount = data.get(f"offset-{index}-amount")
            unit = data.get(f"offset-{index}-unit") or OffsetUnit.DAYS.value
            if amount:
                offsets.append({unit: amount})
        if self.rule.kind in TIMED_KINDS and not offsets:
            raise forms.ValidationError(_("Give at least one time before the appointment."))
        data["offsets"] = _unique(offsets)
        start, end = data.get("override_window_start"), data.get("override_window_end")
        if bool(start) != bool(end):
            self.add_error("override_window_end", _("Give both times of the window, or neither."))
        elif start and end and start >= end:
            self.add_error("override_window_end", _("The window must close after it opens."))
        return data

    def apply(self) -> AutomatedMessage:
        """The rule as the form has it (unsaved)."""
        data, rule = self.cleaned_data, self.rule
        rule.name, rule.enabled, rule.channels = data["name"], data["enabled"], data["channels"]
        if rule.kind in TIMED_KINDS:
            rule.offsets = data["offsets"]
        filters = {k: v for k, v in (rule.filters or {}).items()}
        for name in ("appointment_types", "providers", "locations", "drug_classes"):
            if name in self.fields:
                filters[name] = data[name]
        rule.filters = {k: v for k, v in filters.items() if v}
        override = {}
        if data.get("override_window_start"):
            override["email_sms_window_start"] = data["override_window_start"].strftime("%H:%M")
            override["email_sms_window_end"] = data["override_window_end"].strftime("%H:%M")
        if data.get("override_days"):
            override["delivery_days"] = data["override_days"]
        rule.settings_override = override
        return rule

    def chosen_formats(self) -> dict[tuple[str, str], int]:
        return {(ch, lang): self.cleaned_data[name] for name, ch, lang in self.format_keys}


def _unique(offsets: list[dict]) -> list[dict]:
    seen, unique = set(), []
    for item in offsets:
        key = tuple(item.items())
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _initial(rule: AutomatedMessage) -> dict:
    filters, override = rule.filters or {}, rule.settings_override or {}
    initial = {
        "name": rule.name,
        "enabled": rule.enabled,
        "channels": rule.channels,
        "appointment_types": filters.get("appointment_types", []),
        "providers": filters.get("providers", []),
        "locations": filters.get("locations", []),
        "drug_classes": filters.get("drug_classes", []),
        "override_window_start": override.get("email_sms_window_start"),
        "override_window_end": override.get("email_sms_window_end"),
        "override_days": override.get("delivery_days", []),
    }
    for index, item in enumerate(rule.offsets or []):
        unit = OffsetUnit.HOURS.value if OffsetUnit.HOURS.value in item else OffsetUnit.DAYS.value
        initial[f"offset-{index}-amount"] = item.get(unit)
        initial[f"offset-{index}-unit"] = unit
    return initial


class NewRuleForm(forms.Form):
    """A new automated message: its kind (those the site's kind plans) and a name.
    It is created switched off; the editor sets its timing, channels and formats."""

    kind = forms.ChoiceField(label=_("Message"), help_text=_("What the message is about."))
    name = forms.CharField(label=_("Name"), max_length=200, help_text=_("Shown to staff only."))

    def __init__(self, *args, site, **kwargs) -> None:
        from carebell.planning.rules_defaults import RULE_KINDS
        from carebell.web.staff.templatetags.staff import kind_label

        super().__init__(*args, **kwargs)
        self.site = site
        self.fields["kind"].choices = [
            (k.value, kind_label(k.value)) for k in RULE_KINDS.get(site.kind, ())
        ]

    def rule(self) -> AutomatedMessage:
        from carebell.planning.rules_defaults import new_rule

        return new_rule(self.site, self.cleaned_data["kind"], self.cleaned_data["name"])
