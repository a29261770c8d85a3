"""Bulk contact-preference defaults (SPEC §3.4) as pure functions.

They return the changes to store and per-category counts; the Django layer writes the
changes and shows the counts. Running them again changes nothing more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from carebell.core.channels import ContactFacts
from carebell.core.vocab import Category, Channel, PatientEvent, Preference

_SINGLE = {
    Channel.EMAIL: Preference.EMAIL,
    Channel.SMS: Preference.SMS,
    Channel.CALL: Preference.CALL,
}


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    contact_id: object
    category: Category
    old: Preference
    new: Preference


@dataclass(frozen=True, slots=True)
class DefaultsResult:
    """The changes to store and how many contacts changed per category."""

    changes: tuple[PreferenceChange, ...]
    counts: Mapping[Category, int]


def has_value(contact: ContactFacts, channel: Channel) -> bool:
    """True when the contact has a readable contact point for `channel` (verification,
    opt-out and consent are checked at send time, not here)."""
    return any(p is not None and p.value and p.parses for p in contact.points_for(channel))


def resolve_clinic_option(contact: ContactFacts, option: Preference) -> Preference:
    """What the clinic default `option` stores for `contact`: a ladder (or a single
    channel) becomes the first channel, cheapest first, with a contact value; a set is
    stored when every channel in it has a value, else it falls back like a ladder;
    `none` is stored as is; BLANK when no channel has a value."""
    if option in (Preference.BLANK, Preference.NONE):
        return option
    channels = option.channels
    if not option.is_ladder and len(channels) > 1 and all(has_value(contact, c) for c in channels):
        return option
    for channel in channels:
        if has_value(contact, channel):
            return _SINGLE[channel]
    return Preference.BLANK


def assign_clinic_defaults(
    contacts: Iterable[ContactFacts], options: Mapping[Category, Preference | None]
) -> DefaultsResult:
    """The practice's "Assign Contact Preferences": for each category with an option
    (None means skip), contacts in position #1 whose preference is blank get the
    option resolved by `resolve_clinic_option`. Established values are never touched."""
    changes = []
    for contact in contacts:
        if contact.position != 1:
            continue
        for category, option in options.items():
            if option is None or contact.preferences.get(category, Preference.BLANK):
                continue
            new = resolve_clinic_option(contact, option)
            if new != Preference.BLANK:
                changes.append(
                    PreferenceChange(contact.contact_id, category, Preference.BLANK, new)
                )
    return DefaultsResult(tuple(changes), _counts(changes))


def pharmacy_changes(
    contact: ContactFacts, defaults: Mapping[Category, Preference]
) -> tuple[PreferenceChange, ...]:
    """The pharmacy's "Apply default settings" for one patient: each category takes its
    default, except that a patient's own "no contact" is never switched back on."""
    changes = []
    for category, new in defaults.items():
        old = Preference(contact.preferences.get(category, Preference.BLANK))
        if old != new and old != Preference.NONE:
            changes.append(PreferenceChange(contact.contact_id, category, old, new))
    return tuple(changes)


def applies_on(event: PatientEvent, apply_on: PatientEvent, consented: bool = False) -> bool:
    """True when pharmacy defaults are applied automatically at `event`: on patient
    added, or — when the site waits for consent — on consent (or on add if the patient
    already consented)."""
    if apply_on is PatientEvent.ADDED:
        return event is PatientEvent.ADDED
    return event is PatientEvent.CONSENTED or consented


def update_all(
    contacts: Iterable[ContactFacts], defaults: Mapping[Category, Preference]
) -> DefaultsResult:
    """The pharmacy's "Update all": `pharmacy_changes` for every patient, with counts."""
    changes = [ch for c in contacts for ch in pharmacy_changes(c, defaults)]
    return DefaultsResult(tuple(changes), _counts(changes))


def _counts(changes: list[PreferenceChange]) -> dict[Category, int]:
    return dict(Counter(ch.category for ch in changes))
