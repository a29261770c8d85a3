"""people.bulk.save_people: many patients, contacts, numbers and preferences saved as
people.actions saves them one by one (validated, audited, replanned, a number's
opt-out and consent state), with a few queries for the whole batch."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind, Kind, Relationship
from carebell.messaging.models import OutboxMessage
from carebell.people import actions, bulk
from carebell.people.models import (
    ConsentRecord,
    Contact,
    ContactPoint,
    ContactPreference,
    OptOutEvent,
    Patient,
)
from carebell.sites.models import DeliverySettings
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

NUMBER, OTHER_NUMBER = "+12025550123", "+12025550177"


def household(site, n: int, *, mobile: str | None = None):
    """(patient, contact, point, preference) of a new patient, none of them saved."""
    patient = Patient(site=site, source="csv", external_id=f"P{n}", first_name="Ana",
                      last_name=f"Lopez{n}")  # fmt: skip
    contact = Contact(patient=patient, position=1, relationship=Relationship.SELF,
                      first_name="Ana", last_name=f"Lopez{n}")  # fmt: skip
    point = ContactPoint(contact=contact, kind=ContactPointKind.MOBILE,
                         value=mobile or f"+1202555{n:04d}")  # fmt: skip
    return patient, contact, point, (contact, "reminders", "sms")


def save(site, households, **options):
    return bulk.save_people(
        site,
        patients=[h[0] for h in households],
        contacts=[h[1] for h in households],
        points=[h[2] for h in households],
        preferences=[h[3] for h in households],
        source="csv",
        now=NOW,
        **options,
    )


MODELS = (Patient, Contact, ContactPoint, ContactPreference)


def audit_of(model, site) -> list[tuple]:
    rows = AuditEvent.objects.filter(object_type=model._meta.label_lower, site_id=site.pk)
    return [(e.action, e.actor_label, e.detail.get("system"), tuple(e.detail["fields"]))
            for e in rows.order_by("id")]  # fmt: skip


def test_new_patients_contacts_numbers_and_preferences_are_saved_and_linked(site):
    saved = save(site, [household(site, 1), household(site, 2)])
    assert saved == bulk.Saved((2, 0), (2, 0), (2, 0), (2, 0))
    patient = Patient.objects.get(external_id="P2")
    contact = patient.contacts.get()
    assert (contact.first_name, contact.points.get().value) == ("Ana", "+12025550002")
    assert contact.preferences.get(category="reminders").value == "sms"


def test_each_record_is_audited_as_the_single_entry_points_audit_it(site, other_org_site):
    patient, contact, point, (_, category, value) = household(other_org_site, 1)
    options = {"source": "csv", "now": NOW}
    actions.save_patient(patient, **options)
    contact.patient = patient  # its id, now the patient is saved
    actions.save_contact(contact, **options)
    point.contact = contact
    actions.save_contact_point(point, **options)
    actions.set_preference(contact, category, value, **options)
    one_by_one = {model: audit_of(model, other_org_site) for model in MODELS}
    save(site, [household(site, 1)])
    assert {model: audit_of(model, site) for model in MODELS} == one_by_one
    assert one_by_one[Patient] == [("create", "csv", "csv", (
        "site_id", "source", "external_id", "first_name", "last_name", "birth_date",
        "language", "last_visit_on", "consented_at", "is_active"))]  # fmt: skip


def test_the_staff_member_is_the_actor_when_given(site):
    user = factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")
    save(site, [household(site, 1)], by=user)
    event = AuditEvent.objects.get(object_type="people.patient")
    assert (event.actor, event.actor_label, "system" in event.detail) == (user, "dana", False)


def test_a_change_audits_only_the_fields_that_changed_and_an_unchanged_record_nothing(site):
    save(site, [household(site, 1), household(site, 2)])
    first = Contact.objects.get(patient__external_id="P1")
    second = Contact.objects.get(patient__external_id="P2")
    first.first_name = "Anita"
    before = AuditEvent.objects.count()
    saved = bulk.save_people(site, contacts=[first, second], source="csv", now=NOW)
    assert saved.contacts == (0, 1)
    assert AuditEvent.objects.count() == before + 1
    assert audit_of(Contact, site)[-1] == ("change", "csv", "csv", ("first_name",))
    assert Contact.objects.get(pk=first.pk).first_name == "Anita"


def test_the_queries_do_not_grow_with_the_rows(site):
    def queries(start: int, count: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            save(site, [household(site, n) for n in range(start, start + count)])
        return len(captured)

    # A process's first COPY reads the table's column types once (sql.insert_new): the
    # audit rows of 30 households go by COPY, those of 3 by one INSERT.
    queries(200, 30)
    assert queries(0, 3) == queries(100, 30)
    assert Patient.objects.count() == 63


def test_a_new_number_takes_the_opt_out_recorded_for_it_at_the_site(site):
    OptOutEvent.objects.create(site=site, address=NUMBER, channel="sms", opted_out=True,
                               source="keyword", recorded_at=NOW)  # fmt: skip
    save(site, [household(site, 1, mobile=NUMBER), household(site, 2)])
    flags = dict(ContactPoint.objects.values_list("value", "opted_out_sms"))
    assert flags == {NUMBER: True, "+12025550002": False}


def test_a_changed_number_loses_its_verification_and_takes_its_own_consent(site):
    save(site, [household(site, 1, mobile=NUMBER)])
    point = ContactPoint.objects.get()
    ContactPoint.objects.filter(pk=point.pk).update(verified_at=NOW, verified_method="code",
                                                    consent_sms=True)  # fmt: skip
    ConsentRecord.objects.create(site=site, contact_point=point, address=OTHER_NUMBER,
                                 channel="call", action="grant", source="paper", wording="Yes",
                                 recorded_at=NOW)  # fmt: skip
    point.refresh_from_db()
    point.value = OTHER_NUMBER
    assert bulk.save_people(site, points=[point], source="csv", now=NOW).points == (0, 1)
    point.refresh_from_db()
    assert (point.verified_at, point.verified_method) == (None, "")
    assert (point.consent_sms, point.consent_call) == (False, True)


def test_a_changed_number_replans_the_patients_pending_messages(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, appointment)] = family(site)
    from carebell.appointments import actions as appointment_actions

    appointment_actions.appointment_saved(appointment, None, now=NOW)
    point = parent.points.get()
    point.value = OTHER_NUMBER
    bulk.save_people(site, points=[point], source="csv", now=NOW)
    rows = OutboxMessage.objects.order_by("id").values_list("status", "to_address")
    assert list(rows) == [("cancelled", NUMBER), ("scheduled", OTHER_NUMBER)]


def test_a_field_error_names_the_record_and_writes_nothing(site):
    good, bad = household(site, 1), household(site, 2)
    bad[1].relationship = "neighbour"
    with pytest.raises(ValidationError) as raised:
        save(site, [good, bad])
    assert "neighbour" in " ".join(raised.value.messages)
    assert (Patient.objects.count(), AuditEvent.objects.count()) == (0, 0)


def test_a_preference_that_is_not_a_choice_is_refused_and_nothing_written(site):
    good = household(site, 1)
    wrong = (*good[:3], (good[1], "reminders", "pigeon"))
    with pytest.raises(ValidationError):
        save(site, [wrong])
    assert (Patient.objects.count(), ContactPreference.objects.count()) == (0, 0)


def test_records_of_another_sites_patients_are_refused(site, other_org_site):
    save(site, [household(site, 1)])
    contact = Contact.objects.get()
    contact.first_name = "Stolen"
    with pytest.raises(ValidationError):
        bulk.save_people(other_org_site, contacts=[contact], now=NOW)
    point = ContactPoint(contact=contact, kind=ContactPointKind.EMAIL, value="x@example.org")
    with pytest.raises(ValidationError):
        bulk.save_people(other_org_site, points=[point], now=NOW)
    with pytest.raises(ValidationError):
        bulk.save_people(other_org_site, patients=[Patient.objects.get()], now=NOW)
    assert Contact.objects.get().first_name == "Ana" and ContactPoint.objects.count() == 1


def test_a_pharmacys_defaults_reach_a_first_contact_added_and_the_given_preference_wins(
    pharmacy,
):
    DeliverySettings.objects.filter(site=pharmacy).update(
        patient_defaults={"rx_ready": "email+sms", "reminders": "email"},
        apply_defaults_on_consent=False,
    )
    save(pharmacy, [household(pharmacy, 1)])
    contact = Contact.objects.get()
    assert dict(contact.preferences.values_list("category", "value")) == {
        "rx_ready": "email+sms",
        "reminders": "sms",
    }
