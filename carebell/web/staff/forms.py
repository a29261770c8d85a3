"""The staff app's forms: the sign-in steps and the delivery settings."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from carebell.core.vocab import CancellationMode, Channel, ReadyTrigger, SiteKind, Weekday
from carebell.sites.models import DeliverySettings, Department

WEEKDAYS = [
    (Weekday.MON.value, _("Monday")),
    (Weekday.TUE.value, _("Tuesday")),
    (Weekday.WED.value, _("Wednesday")),
    (Weekday.THU.value, _("Thursday")),
    (Weekday.FRI.value, _("Friday")),
    (Weekday.SAT.value, _("Saturday")),
    (Weekday.SUN.value, _("Sunday")),
]
CHANNELS = [
    (Channel.EMAIL.value, _("Email")),
    (Channel.SMS.value, _("Text message (SMS)")),
    (Channel.CALL.value, _("Voice call")),
]
CANCELLATION_MODES = [
    (CancellationMode.BY_REQUEST.value, _("By request: staff cancel the appointment themselves")),
    (CancellationMode.AUTOMATIC.value, _("Automatically: carebell cancels the appointment")),
]
READY_TRIGGERS = [
    (ReadyTrigger.LABEL_PRINTED.value, _("Label printed")),
    (ReadyTrigger.INSURANCE_APPROVED.value, _("Insurance approved")),
    (ReadyTrigger.VERIFIED_FOR_FILL.value, _("Verified for fill")),
]


class CodeField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Six-digit code"))
        kwargs.setdefault("min_length", 6)
        kwargs.setdefault("max_length", 8)
        super().__init__(**kwargs)
        self.widget.attrs.update(
            {"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"}
        )

    def clean(self, value):
        return super().clean((value or "").replace(" ", ""))


class SignInForm(forms.Form):
    username = forms.CharField(label=_("User name"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)
    username.widget.attrs.update({"autocomplete": "username", "autofocus": True})
    password.widget.attrs.update({"autocomplete": "current-password"})


class CodeForm(forms.Form):
    code = CodeField()
    code.widget.attrs["autofocus"] = True


def _checkboxes(choices, label, help_text, *, required=False):
    return forms.MultipleChoiceField(
        choices=choices,
        label=label,
        help_text=help_text,
        required=required,
        widget=forms.CheckboxSelectMultiple,
    )


def _time(label, help_text):
    return forms.TimeField(
        label=label,
        help_text=help_text,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )


class LinesField(forms.CharField):
    """A list of words, one per line."""

    widget = forms.Textarea(attrs={"rows": 5})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def clean(self, value):
        text = super().clean(value)
        return [line.strip() for line in text.splitlines() if line.strip()]


class DaysListField(forms.CharField):
    """Whole numbers of days, separated by commas: "3, 7"."""

    def prepare_value(self, value):
        return ", ".join(str(v) for v in value) if isinstance(value, list) else value

    def clean(self, value):
        text = super().clean(value) or ""
        try:
            days = [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError(_("Give whole numbers of days, e.g. 3, 7.")) from None
        if any(d < 1 or d > 90 for d in days):
            raise forms.ValidationError(_("Each number of days must be between 1 and 90."))
        return sorted(set(days))


#: Field groups of the delivery settings page, each shown for the site kinds listed.
CLINIC_ONLY = (
    "cancellation_mode",
    "cancellation_deadline_hours",
    "track_cancellations",
    "cancellation_department",
    "combine_siblings",
)
PHARMACY_ONLY = (
    "refill_channels",
    "refill_when_due",
    "refill_when_past_due",
    "refill_days_before",
    "refill_days_after",
    "refill_non_maintenance",
    "refill_controlled",
    "refill_c2",
    "ready_channels",
    "ready_trigger",
    "pickup_reminder_days",
    "pickup_confirmation_channels",
    "review_channels",
    "review_delay_hours",
    "review_resend_days",
    "review_max_sends",
)

SECTIONS = [
    (
        _("When messages may go out"),
        (
            "email_sms_window_start",
            "email_sms_window_end",
            "call_window_start",
            "call_window_end",
            "delivery_days",
            "daily_process_start",
        ),
    ),
    (
        _("Appointment cancellations"),
        (
            "cancellation_mode",
            "cancellation_deadline_hours",
            "track_cancellations",
            "cancellation_department",
        ),
    ),
    (_("Families"), ("combine_siblings",)),
    (_("Who may be contacted"), ("only_verified", "require_opt_in", "restricted_words")),
    (_("Text messages"), ("smart_encoding", "sms_price_per_segment", "reply_at_once_minutes")),
    (
        _("Refill reminders"),
        (
            "refill_channels",
            "refill_when_due",
            "refill_when_past_due",
            "refill_days_before",
            "refill_days_after",
            "refill_non_maintenance",
            "refill_controlled",
            "refill_c2",
        ),
    ),
    (
        _("Ready for pickup"),
        ("ready_channels", "ready_trigger", "pickup_reminder_days", "pickup_confirmation_channels"),
    ),
    (
        _("Review requests"),
        ("review_channels", "review_delay_hours", "review_resend_days", "review_max_sends"),
    ),
    (
        _("Greetings and general messages"),
        ("birthday_channels", "welcome_channels", "welcome_on_consent", "general_channels"),
    ),
    (_("Staff sign-in"), ("require_two_factor_for_admins",)),
]


class DeliverySettingsForm(forms.ModelForm):
    email_sms_window_start = _time(
        _("Email and text window opens"), _("Earliest local time for email and text messages.")
    )
    email_sms_window_end = _time(
        _("Email and text window closes"), _("Latest local time for email and text messages.")
    )
    call_window_start = _time(_("Call window opens"), _("Earliest local time for voice calls."))
    call_window_end = _time(_("Call window closes"), _("Latest local time for voice calls."))
    daily_process_start = _time(
        _("Daily batch starts"),
        _("Birthdays, refill reminders, pickup follow-ups and reviews are worked out after this."),
    )
    delivery_days = _checkboxes(
        WEEKDAYS, _("Delivery days"), _("Messages go out only on the days ticked."), required=True
    )
    cancellation_mode = forms.ChoiceField(
        choices=CANCELLATION_MODES,
        widget=forms.RadioSelect,
        label=_("When a patient cancels"),
        help_text=_("Whether a patient's cancellation changes the schedule by itself."),
    )
    cancellation_deadline_hours = forms.IntegerField(
        min_value=1,
        max_value=24,
        label=_("Cancellation deadline (hours before)"),
        help_text=_("From 1 to 24. Later cancellations are refused and the patient asked to call."),
    )
    restricted_words = LinesField(
        required=False,
        label=_("Restricted words"),
        help_text=_("One word or phrase per line. A message containing one is not sent."),
    )
    pickup_reminder_days = DaysListField(
        required=False,
        label=_("Pickup reminders after (days)"),
        help_text=_("Remind again after each of these numbers of days, e.g. 3, 7."),
    )
    reply_at_once_minutes = forms.IntegerField(
        min_value=0,
        max_value=240,
        label=_("Staff replies go at once within (minutes)"),
        help_text=_(
            "A reply to the patient's own text of the last N minutes skips the window and "
            "quiet hours (0 = off, up to 240)."
        ),
    )
    ready_trigger = forms.ChoiceField(
        choices=READY_TRIGGERS,
        label=_("Tell the patient when"),
        help_text=_("The step of the fill at which the order counts as ready."),
    )

    class Meta:
        model = DeliverySettings
        fields = [name for _title, names in SECTIONS for name in names]
        labels = {
            "track_cancellations": _("Notify a department of cancellations"),
            "cancellation_department": _("Department to notify"),
            "combine_siblings": _("Combine siblings"),
            "only_verified": _("Only verified contact points"),
            "require_opt_in": _("Require opt-in for texts and calls"),
            "refill_when_due": _("Remind when a refill is due"),
            "refill_when_past_due": _("Remind when a refill is past due"),
            "refill_days_before": _("Days before the due date"),
            "refill_days_after": _("Days after the due date"),
            "refill_non_maintenance": _("Include non-maintenance drugs"),
            "refill_controlled": _("Include controlled drugs (C3–C5)"),
            "refill_c2": _("Include C2 drugs"),
            "review_delay_hours": _("Ask for a review after (hours)"),
            "review_resend_days": _("Ask again after (days)"),
            "review_max_sends": _("Ask at most (times)"),
            "welcome_on_consent": _("Welcome on consent"),
            "smart_encoding": _("Plain characters in texts"),
            "sms_price_per_segment": _("Price of one text segment"),
            "require_two_factor_for_admins": _("Two-factor sign-in for System Administrators"),
        }
        help_texts = {
            "track_cancellations": _("The department below gets a notification in carebell."),
            "cancellation_department": _("Its members see the notification; email too if set."),
            "combine_siblings": _("One message per parent for several children seen the same day."),
            "only_verified": _("Send only to numbers and addresses that were verified."),
            "require_opt_in": _("Texts and calls only to contact points with recorded consent."),
            "refill_when_due": _("A reminder some days before the supply runs out."),
            "refill_when_past_due": _("A reminder some days after, if not refilled."),
            "refill_days_before": _("How many days before the due date the reminder goes."),
            "refill_days_after": _("How many days after the due date the reminder goes."),
            "refill_non_maintenance": _("Drugs not taken long-term are left out unless ticked."),
            "refill_controlled": _("Schedules C3, C4 and C5."),
            "refill_c2": _("Schedule C2, which cannot be refilled without a new prescription."),
            "review_delay_hours": _("Time after pickup before the review request goes."),
            "review_resend_days": _("If the link was not opened."),
            "review_max_sends": _("Including the first request."),
            "welcome_on_consent": _("Greet when the patient consents rather than when added."),
            "smart_encoding": _(
                "Curly quotes and similar become plain ones, so a text takes fewer segments."
            ),
            "sms_price_per_segment": _(
                "For cost estimates and reports; empty uses the price this installation sets."
            ),
            "require_two_factor_for_admins": _(
                "Administrators must give a code from an authenticator app when signing in."
            ),
        }

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = site
        for name in [n for n in self.fields if n.endswith("_channels")]:
            self.fields[name] = _checkboxes(
                CHANNELS, self.fields[name].label, _channel_help(name), required=False
            )
        hidden = PHARMACY_ONLY if site.kind == SiteKind.CLINIC else CLINIC_ONLY
        for name in hidden:
            self.fields.pop(name, None)
        if "cancellation_department" in self.fields:
            self.fields["cancellation_department"].queryset = Department.objects.filter(site=site)
            self.fields["cancellation_department"].empty_label = _("— none —")
        for name, label in _CHANNEL_LABELS.items():
            if name in self.fields:
                self.fields[name].label = label

    def sections(self):
        """(title, bound fields) for each section that has a field for this site's kind."""
        shown = []
        for title, names in SECTIONS:
            fields = [self[name] for name in names if name in self.fields]
            if fields:
                shown.append((title, fields))
        return shown

    def clean(self):
        data = super().clean()
        for start, end, label in (
            ("email_sms_window_start", "email_sms_window_end", _("email and text")),
            ("call_window_start", "call_window_end", _("call")),
        ):
            if data.get(start) and data.get(end) and data[start] >= data[end]:
                self.add_error(
                    end, _("The %(window)s window must close after it opens.") % {"window": label}
                )
        return data


_CHANNEL_LABELS = {
    "refill_channels": _("Refill reminder channels"),
    "ready_channels": _("Ready-for-pickup channels"),
    "pickup_confirmation_channels": _("Pickup confirmation channels"),
    "review_channels": _("Review request channels"),
    "birthday_channels": _("Birthday greeting channels"),
    "welcome_channels": _("Welcome message channels"),
    "general_channels": _("General message channels"),
}


def _channel_help(name: str) -> str:
    if name == "pickup_confirmation_channels":
        return _("None ticked: no confirmation after pickup.")
    if name == "general_channels":
        return _("Channels staff may use for general and group messages.")
    return _("Over which channels this message may go.")
