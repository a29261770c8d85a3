"""Pharmacy patient defaults applied by themselves: when a patient is added, or only
when the patient consents, as the site's setting says (SPEC §3.4)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carebell.core.vocab import Relationship
from carebell.people import actions
from carebell.people.models import Contact, ContactPreference, Patient
from carebell.sites.models import DeliverySettings

pytestmark = pytest.mark.django_db


def use_defaults(site, *, on_consent: bool):
    DeliverySettings.objects.filter(site=site).update(
        patient_defaults={"rx_ready": "email+sms", "refill_reminder": "sms"},
        apply_defaults_on_consent=on_consent,
    )


def add_patient(site, **fields) -> Contact:
    patient = actions.save_patient(
        Patient(site=site, external_id="X1", first_name="Rosa", last_name="Diaz", **fields)
    )
    contact = Contact(patient=patient, position=1, relationship=Relationship.SELF,
                      first_name="Rosa", last_name="Diaz")  # fmt: skip
    return actions.save_contact(contact)


def preferences(contact) -> dict:
    return dict(ContactPreference.objects.filter(contact=contact).values_list("category", "value"))


def test_a_patient_added_takes_the_defaults_when_the_site_applies_them_on_add(pharmacy):
    use_defaults(pharmacy, on_consent=False)
    contact = add_patient(pharmacy)
    assert preferences(contact) == {"rx_ready": "email+sms", "refill_reminder": "sms"}


def test_a_site_applying_on_consent_waits_for_the_consent(pharmacy):
    use_defaults(pharmacy, on_consent=True)
    contact = add_patient(pharmacy)
    assert preferences(contact) == {}
    patient = contact.patient
    patient.consented_at = timezone.now()
    actions.save_patient(patient)
    assert preferences(contact) == {"rx_ready": "email+sms", "refill_reminder": "sms"}


def test_a_patient_who_consented_before_being_added_takes_them_at_once(pharmacy):
    use_defaults(pharmacy, on_consent=True)
    contact = add_patient(pharmacy, consented_at=timezone.now())
    assert preferences(contact)["rx_ready"] == "email+sms"


def test_a_site_applying_on_add_does_not_apply_them_again_on_consent(pharmacy):
    use_defaults(pharmacy, on_consent=False)
    contact = add_patient(pharmacy)
    actions.set_preference(contact, "rx_ready", "none")
    patient = contact.patient
    patient.consented_at = timezone.now()
    actions.save_patient(patient)
    assert preferences(contact)["rx_ready"] == "none"


def test_a_clinic_never_applies_pharmacy_defaults(site):
    use_defaults(site, on_consent=False)
    assert preferences(add_patient(site)) == {}
