"""Replanning a patient with nothing pending and no appointment: one query decides
there is nothing to judge (the site's rules are not read), and what the planner's
passes plan for such a patient — a welcome — is still planned."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.core.reasons import Code, reason
from carebell.core.vocab import ContactPointKind, Kind, OutboxStatus, Relationship
from carebell.messaging.models import OutboxMessage
from carebell.people import actions
from carebell.people.models import Contact, ContactPoint, Patient
from carebell.planning import replan
from carebell.planning.runner import plan_once
from tests import factories
from tests.messaging.engine_setup import NOW, enable

pytestmark = pytest.mark.django_db

CHANGED = reason(Code.RECIPIENT_CHANGED)


def new_patient(site) -> Patient:
    """A patient, their own contact, an email address and a welcome preference, saved
    in one block as a feed or a FHIR client saves them."""
    with replan.once_at_end():
        patient = Patient(site=site, source="fhir", external_id="A1", first_name="Ada",
                          last_name="Lane")  # fmt: skip
        actions.save_patient(patient, source="fhir", now=NOW)
        me = actions.save_contact(
            Contact(patient=patient, position=1, relationship=Relationship.SELF,
                    first_name="Ada", last_name="Lane"), source="fhir", now=NOW,
        )  # fmt: skip
        actions.save_contact_point(
            ContactPoint(contact=me, kind=ContactPointKind.EMAIL, value="ada@example.org",
                         raw_value="ada@example.org"), source="fhir", now=NOW,
        )  # fmt: skip
        actions.set_preference(me, "welcome", "email", source="fhir", now=NOW)
    return patient


def test_a_new_patient_is_replanned_by_one_query_that_finds_nothing_to_judge(pharmacy):
    enable(pharmacy, Kind.APPT_REMINDER, [{"days": 1}])
    enable(pharmacy, Kind.WELCOME)
    patient = new_patient(pharmacy)
    with CaptureQueriesContext(connection) as captured:
        done = replan.replan_patients(pharmacy, [patient.pk], now=NOW, why=CHANGED)
    assert len(captured) == 1
    assert done == replan.Replanned()
    assert not OutboxMessage.objects.exists()


def test_a_new_patient_the_site_welcomes_is_welcomed_by_the_next_pass(pharmacy):
    enable(pharmacy, Kind.WELCOME)
    patient = new_patient(pharmacy)
    plan_once(now=NOW)
    message = OutboxMessage.objects.get()
    assert (message.kind, message.entity_id, message.status) == (
        "welcome", patient.pk, OutboxStatus.SCHEDULED,
    )  # fmt: skip


def test_a_pending_welcome_of_a_patient_without_appointments_is_judged_again(pharmacy):
    enable(pharmacy, Kind.WELCOME)
    patient = new_patient(pharmacy)
    plan_once(now=NOW)
    me = patient.contacts.get()
    me.authority = "none"
    actions.save_contact(me, source="staff", now=NOW)
    message = OutboxMessage.objects.get()
    assert (message.status, message.block_reason) == ("blocked", "ineligible")


def test_a_new_number_for_a_patient_with_an_appointment_plans_its_reminder(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    patient = factories.make_patient(site)
    me = factories.make_contact(patient, relationship=Relationship.SELF)
    factories.set_preference(me, "reminders", "sms")
    factories.make_appointment(patient, starts_at=NOW + dt.timedelta(days=3))
    assert not OutboxMessage.objects.exists()  # no number: nothing to plan yet
    actions.save_contact_point(
        ContactPoint(contact=me, kind=ContactPointKind.MOBILE, value="+12025550123",
                     raw_value="202-555-0123", consent_sms=True), source="staff", now=NOW,
    )  # fmt: skip
    message = OutboxMessage.objects.get()
    assert (message.kind, message.to_address) == ("appt_reminder", "+12025550123")
