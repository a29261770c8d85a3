"""carebell.validation.clean: the errors of full_clean, without the queries an entry
point's door has made unnecessary."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from carebell.appointments.models import Appointment
from carebell.people.models import Contact
from carebell.validation import clean
from tests import factories

pytestmark = pytest.mark.django_db


def _messages(call) -> dict:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.message_dict


def test_it_refuses_what_full_clean_refuses_with_the_same_messages(site):
    patient = factories.make_patient(site)
    factories.make_contact(patient, position=1)
    for contact in (
        Contact(patient=patient, position=0, relationship="self"),  # only the CHECK refuses 0
        Contact(patient=patient, position=1, relationship="self"),  # the position is taken
        Contact(patient=patient, position=2, relationship="cousin"),  # not a choice
    ):
        assert _messages(lambda c=contact: clean(c)) == _messages(contact.full_clean)


def test_it_asks_nothing_for_the_rows_it_holds(site, django_assert_num_queries):
    patient = factories.make_patient(site)
    appointment = factories.make_appointment(patient)
    appointment.site, appointment.patient = site, patient
    appointment.status = "booked"
    with django_assert_num_queries(0):
        clean(appointment, checked=("appointment_external_id_unique",))
    appointment.status = "lost"
    assert "status" in _messages(lambda: clean(appointment))


def test_it_still_asks_for_a_key_nobody_looked_up(site):
    patient = factories.make_patient(site)
    taken = factories.make_appointment(patient)
    twin = Appointment(site=site, patient=patient, source=taken.source,
                       external_id=taken.external_id, starts_at=taken.starts_at)  # fmt: skip
    assert _messages(lambda: clean(twin)) == _messages(twin.full_clean)
