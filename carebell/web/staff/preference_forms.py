"""Forms of the bulk preference tools (SPEC §3.4): the practice's "Assign Contact
Preferences" and the pharmacy's "Patient Default"."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from carebell.core.vocab import Category, Preference

SKIP = ""

CATEGORY_LABELS = {
    Category.REMINDERS: _("Reminders"),
    Category.RECALLS: _("Recalls"),
    Category.GENERAL: _("General notices"),
    Category.PORTAL: _("Patient portal"),
    Category.REFILL_REMINDER: _("Refill reminders"),
    Category.RX_READY: _("Ready for pickup"),
    Category.BIRTHDAY: _("Birthday greeting"),
    Category.WELCOME: _("Welcome message"),
    Category.REVIEW: _("Review request"),
}

PREFERENCE_LABELS = {
    Preference.NONE: _("No contact"),
    Preference.EMAIL: _("Email"),
    Preference.SMS: _("Text message"),
    Preference.CALL: _("Voice call"),
    Preference.EMAIL_AND_SMS: _("Email and text"),
    Preference.ALL: _("Email, text and call"),
    Preference.EMAIL_OR_SMS: _("Email or text"),
    Preference.SMS_OR_CALL: _("Text or call"),
    Preference.EMAIL_OR_SMS_OR_CALL: _("Email, text or call"),
}

#: The categories each tool offers, as the product documents list them.
CLINIC_CATEGORIES = (Category.REMINDERS, Category.RECALLS, Category.GENERAL, Category.PORTAL)
PHARMACY_CATEGORIES = (
    Category.REFILL_REMINDER,
    Category.RX_READY,
    Category.BIRTHDAY,
    Category.WELCOME,
    Category.GENERAL,
    Category.REVIEW,
)

CLINIC_OPTIONS = [
    Preference.EMAIL_OR_SMS_OR_CALL,
    Preference.EMAIL_OR_SMS,
    Preference.SMS_OR_CALL,
    Preference.EMAIL,
    Preference.SMS,
    Preference.CALL,
    Preference.EMAIL_AND_SMS,
    Preference.NONE,
]
PHARMACY_OPTIONS = [
    Preference.EMAIL,
    Preference.SMS,
    Preference.CALL,
    Preference.EMAIL_AND_SMS,
    Preference.ALL,
    Preference.NONE,
]

APPLY_ON = [
    ("added", _("When a patient is added")),
    ("consent", _("Only when the patient consents")),
]


def _choices(options, empty_label):
    return [(SKIP, empty_label)] + [(p.value, PREFERENCE_LABELS[p]) for p in options]


class ClinicDefaultsForm(forms.Form):
    """One option, or (skip), per category."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for category in CLINIC_CATEGORIES:
            self.fields[category.value] = forms.ChoiceField(
                label=CATEGORY_LABELS[category],
                choices=_choices(CLINIC_OPTIONS, _("(skip)")),
                required=False,
            )

    def options(self) -> dict[Category, Preference | None]:
        """Category → the option chosen, None for (skip)."""
        data = self.cleaned_data
        return {c: Preference(data[c.value]) if data[c.value] else None for c in CLINIC_CATEGORIES}


class PharmacyDefaultsForm(forms.Form):
    """The defaults per category and when they apply."""

    apply_on = forms.ChoiceField(
        label=_("Apply the defaults"), choices=APPLY_ON, widget=forms.RadioSelect
    )

    def __init__(self, *args, delivery, **kwargs):
        super().__init__(*args, **kwargs)
        saved = delivery.patient_defaults or {}
        for category in PHARMACY_CATEGORIES:
            self.fields[category.value] = forms.ChoiceField(
                label=CATEGORY_LABELS[category],
                choices=_choices(PHARMACY_OPTIONS, _("(no default)")),
                required=False,
                initial=saved.get(category.value, SKIP),
            )
        self.fields["apply_on"].initial = (
            "consent" if delivery.apply_defaults_on_consent else "added"
        )

    @property
    def category_fields(self):
        return [self[c.value] for c in PHARMACY_CATEGORIES]

    def defaults(self) -> dict[str, str]:
        data = self.cleaned_data
        return {c.value: data[c.value] for c in PHARMACY_CATEGORIES if data[c.value]}


def saved_defaults(delivery) -> dict[Category, Preference]:
    """The site's pharmacy defaults as the rules core reads them (unknown entries
    left out)."""
    result = {}
    for category, value in (delivery.patient_defaults or {}).items():
        try:
            result[Category(category)] = Preference(value)
        except ValueError:
            continue
    return result
