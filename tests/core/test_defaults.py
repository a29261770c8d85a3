import pytest

from carebell.core.channels import ContactFacts, ContactPointFacts
from carebell.core.defaults import (
    applies_on,
    assign_clinic_defaults,
    pharmacy_changes,
    resolve_clinic_option,
    update_all,
)
from carebell.core.vocab import Category, PatientEvent, Preference

MOBILE = ContactPointFacts("+12025550100")
GARBLED = ContactPointFacts("x", parses=False)
EMAIL = ContactPointFacts("pat@example.org")


def contact(cid=1, position=1, prefs=None, **kw):
    return ContactFacts(cid, position=position, preferences=prefs or {}, **kw)


@pytest.mark.parametrize(
    ("option", "kw", "stored"),
    [
        (Preference.EMAIL_OR_SMS, {"email": EMAIL, "mobile": MOBILE}, Preference.EMAIL),
        (Preference.EMAIL_OR_SMS, {"mobile": MOBILE}, Preference.SMS),
        (Preference.EMAIL_OR_SMS, {}, Preference.BLANK),
        (
            Preference.SMS_OR_CALL,
            {"mobile": GARBLED},
            Preference.BLANK,
        ),
        (Preference.EMAIL_OR_SMS_OR_CALL, {"home": MOBILE}, Preference.CALL),
        (Preference.EMAIL, {"mobile": MOBILE}, Preference.BLANK),
        (Preference.EMAIL_AND_SMS, {"email": EMAIL, "mobile": MOBILE}, Preference.EMAIL_AND_SMS),
        (Preference.EMAIL_AND_SMS, {"mobile": MOBILE}, Preference.SMS),
        (Preference.NONE, {}, Preference.NONE),
    ],
)
def test_a_clinic_option_resolves_to_what_is_stored(option, kw, stored):
    assert resolve_clinic_option(contact(**kw), option) == stored


def test_clinic_defaults_touch_only_blank_fields_of_position_one():
    contacts = [
        contact(1, email=EMAIL),
        contact(2, prefs={Category.REMINDERS: Preference.SMS}, email=EMAIL),
        contact(3, position=2, email=EMAIL),
        contact(4, mobile=MOBILE),
    ]
    options = {Category.REMINDERS: Preference.EMAIL_OR_SMS, Category.RECALLS: None}
    result = assign_clinic_defaults(contacts, options)
    assert [(c.contact_id, c.new) for c in result.changes] == [
        (1, Preference.EMAIL),
        (4, Preference.SMS),
    ]
    assert result.counts == {Category.REMINDERS: 2}


def test_clinic_defaults_are_safe_to_run_again():
    c = contact(1, email=EMAIL)
    options = {Category.REMINDERS: Preference.EMAIL_OR_SMS}
    first = assign_clinic_defaults([c], options)
    applied = contact(1, email=EMAIL, prefs={ch.category: ch.new for ch in first.changes})
    assert assign_clinic_defaults([applied], options).changes == ()


def test_pharmacy_defaults_never_switch_no_contact_back_on():
    c = contact(prefs={Category.RX_READY: Preference.NONE, Category.BIRTHDAY: Preference.EMAIL})
    defaults = {
        Category.RX_READY: Preference.EMAIL_AND_SMS,
        Category.BIRTHDAY: Preference.EMAIL_AND_SMS,
        Category.REFILL_REMINDER: Preference.EMAIL_AND_SMS,
    }
    changes = pharmacy_changes(c, defaults)
    assert {ch.category for ch in changes} == {Category.BIRTHDAY, Category.REFILL_REMINDER}


def test_update_all_counts_changes_per_category():
    defaults = {Category.REFILL_REMINDER: Preference.SMS}
    contacts = [
        contact(1),
        contact(2),
        contact(3, prefs={Category.REFILL_REMINDER: Preference.SMS}),
    ]
    assert update_all(contacts, defaults).counts == {Category.REFILL_REMINDER: 2}


@pytest.mark.parametrize(
    ("event", "apply_on", "consented", "applies"),
    [
        (PatientEvent.ADDED, PatientEvent.ADDED, False, True),
        (PatientEvent.CONSENTED, PatientEvent.ADDED, True, False),
        (PatientEvent.ADDED, PatientEvent.CONSENTED, False, False),
        (PatientEvent.ADDED, PatientEvent.CONSENTED, True, True),
        (PatientEvent.CONSENTED, PatientEvent.CONSENTED, True, True),
    ],
)
def test_pharmacy_defaults_apply_on_the_sites_chosen_event(event, apply_on, consented, applies):
    assert applies_on(event, apply_on, consented) is applies
