"""A change to a contact, a contact point or a preference replans the patient's
pending messages in its own transaction, through the one entry point every door uses."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from carebell.appointments import actions
from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import OutboxMessage
from carebell.people import actions as people
from carebell.people.models import Contact, ContactPoint, OptOutEvent
from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

NUMBER, OTHER_NUMBER = "+12025550123", "+12025550177"


def planned(site):
    """A family whose reminder the outbox holds, scheduled."""
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, parent, appointment)] = family(site)
    actions.appointment_saved(appointment, None, now=NOW)
    return child, parent, OutboxMessage.objects.get()


def statuses() -> list[tuple]:
    rows = OutboxMessage.objects.order_by("id")
    return [(m.status, m.block_reason, m.to_address) for m in rows]


def test_a_contact_given_no_authority_gets_none_of_its_planned_messages(site):
    _child, parent, message = planned(site)
    parent.authority = "none"
    people.save_contact(parent, now=NOW)
    message.refresh_from_db()
    assert (message.status, message.block_reason) == ("blocked", "ineligible")
    assert [r["code"] for r in message.reasons] == ["recipient_changed", "contact_authority_none"]


def test_a_contact_whose_end_date_passed_gets_none_of_its_planned_messages(site):
    _child, parent, _message = planned(site)
    parent.end_date = NOW.date() - dt.timedelta(days=1)
    people.save_contact(parent, now=NOW)
    assert statuses() == [("blocked", "ineligible", NUMBER)]


def test_a_no_contact_preference_stops_the_planned_messages(site):
    _child, parent, _message = planned(site)
    people.set_preference(parent, "reminders", "none", now=NOW)
    assert statuses() == [("blocked", "ineligible", NUMBER)]


def test_a_changed_number_loses_its_verification_and_gets_the_reminder_instead(site):
    _child, parent, message = planned(site)
    point = parent.points.get()
    ContactPoint.objects.filter(id=point.id).update(verified_at=NOW, verified_method="code")
    point.refresh_from_db()
    point.value = OTHER_NUMBER
    people.save_contact_point(point, now=NOW)
    point.refresh_from_db()
    assert (point.verified_at, point.verified_method) == (None, "")
    assert statuses() == [("cancelled", "", NUMBER), ("scheduled", "", OTHER_NUMBER)]
    fresh = OutboxMessage.objects.get(status="scheduled")
    assert fresh.planned_at == message.planned_at


def test_a_changed_number_takes_the_opt_out_recorded_for_it_at_the_site(site):
    _child, parent, _message = planned(site)
    OptOutEvent.objects.create(site=site, address=OTHER_NUMBER, channel="sms", opted_out=True,
                               source="keyword", recorded_at=NOW)  # fmt: skip
    point = parent.points.get()
    point.value = OTHER_NUMBER
    people.save_contact_point(point, now=NOW)
    point.refresh_from_db()
    assert point.opted_out_sms
    assert statuses() == [("blocked", "opted_out", NUMBER)]


def test_a_changed_number_does_not_keep_the_old_numbers_consent(site):
    _child, parent, _message = planned(site)
    point = parent.points.get()
    assert point.consent_sms
    point.value = OTHER_NUMBER
    people.save_contact_point(point, now=NOW)
    point.refresh_from_db()
    assert not point.consent_sms


def test_a_preference_set_for_the_first_time_plans_the_reminder_at_once(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, appointment)] = family(site, preference="")
    actions.appointment_saved(appointment, None, now=NOW)
    assert not OutboxMessage.objects.exists()
    people.set_preference(parent, "reminders", "sms", now=NOW)
    assert statuses() == [("scheduled", "", NUMBER)]


def test_a_number_that_is_no_longer_a_mobile_gets_no_texts(site):
    _child, parent, _message = planned(site)
    point = parent.points.get()
    point.kind = ContactPointKind.HOME
    people.save_contact_point(point, now=NOW)
    message = OutboxMessage.objects.get()
    assert (message.status, message.block_reason) == ("blocked", "ineligible")
    assert message.reasons[-1]["code"] == "no_contact_point"


def test_a_contact_point_with_message_history_is_kept_with_a_clear_error(site):
    _child, parent, _message = planned(site)
    point = parent.points.get()
    with pytest.raises(ValidationError, match="has message or consent history"):
        people.remove_contact_point(point, now=NOW)
    assert ContactPoint.objects.filter(id=point.id).exists()
    assert statuses() == [("scheduled", "", NUMBER)]


def test_a_contact_eligible_again_is_planned_afresh(site):
    _child, parent, _message = planned(site)
    parent.authority = "none"
    people.save_contact(parent, now=NOW)
    parent.authority = "joint"
    people.save_contact(parent, now=NOW)
    assert statuses() == [("blocked", "ineligible", NUMBER), ("scheduled", "", NUMBER)]


def test_an_unrelated_change_keeps_the_planned_message_as_it_is(site):
    _child, parent, message = planned(site)
    parent.first_name = "Patricia"
    people.save_contact(parent, now=NOW)
    assert list(OutboxMessage.objects.values_list("id", "status")) == [(message.id, "scheduled")]


def test_a_contact_moving_to_another_zone_gets_its_reminder_at_its_own_allowed_time(site):
    _child, parent, message = planned(site)
    parent.time_zone = "Pacific/Honolulu"
    people.save_contact(parent, now=NOW)
    moved = OutboxMessage.objects.get()
    assert moved.id == message.id and moved.status == "scheduled"
    local = moved.planned_at.astimezone(ZoneInfo("Pacific/Honolulu"))
    assert dt.time(8) <= local.time() <= dt.time(21)
    assert moved.events.last().reasons[-1]["code"] == "replanned_to"


def test_bad_input_is_refused_and_changes_nothing(site):
    _child, parent, _message = planned(site)
    parent.authority = "sometimes"
    with pytest.raises(ValidationError):
        people.save_contact(parent, now=NOW)
    assert Contact.objects.get(id=parent.id).authority == ""
    assert statuses() == [("scheduled", "", NUMBER)]


def test_a_change_is_audited_by_field_name_only(site):
    _child, parent, _message = planned(site)
    parent.authority, parent.last_name = "none", "Secretname"
    people.save_contact(parent, now=NOW, source="hl7")
    event = AuditEvent.objects.get(action="change", object_id=str(parent.id))
    assert sorted(event.detail["fields"]) == ["authority", "last_name"]
    assert "Secretname" not in str(event.detail) and event.actor_label == "hl7"


def test_an_opt_out_set_by_hand_is_recorded_for_the_number_at_the_site(site):
    _child, parent, _message = planned(site)
    point = parent.points.get()
    point.opted_out_sms = True
    people.save_contact_point(point, now=NOW)
    event = OptOutEvent.objects.get()
    assert (event.address, event.opted_out, event.source) == (NUMBER, True, "staff")
    assert statuses() == [("blocked", "opted_out", NUMBER)]


# The admin, the one door today, goes through the entry points ---------------------------


def change_url(obj) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def contact_form(contact, **changes) -> dict:
    form = {
        "patient": contact.patient_id, "position": contact.position,
        "relationship": contact.relationship, "first_name": contact.first_name,
        "last_name": contact.last_name, "authority": contact.authority,
        "end_date": "", "resides_with_patient": "on", "language": contact.language,
        "time_zone": "",
        "points-TOTAL_FORMS": 0, "points-INITIAL_FORMS": 0,
        "preferences-TOTAL_FORMS": 0, "preferences-INITIAL_FORMS": 0,
    }  # fmt: skip
    return {**form, **changes}


def test_a_contact_changed_in_the_admin_gets_none_of_its_planned_messages(client, site):
    _child, parent, _message = planned(site)
    staff = factories.make_staff(site, FRONT_DESK)
    client.force_login(staff)
    response = client.post(change_url(parent), contact_form(parent, authority="none"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert statuses() == [("blocked", "ineligible", NUMBER)]
    event = AuditEvent.objects.get(action="change", object_id=str(parent.id))
    assert event.actor == staff and event.detail == {"fields": ["authority"]}


def test_a_number_changed_in_an_admin_inline_replans_and_loses_its_verification(client, site):
    _child, parent, _message = planned(site)
    point = parent.points.get()
    ContactPoint.objects.filter(id=point.id).update(verified_at=NOW)
    client.force_login(factories.make_staff(site, FRONT_DESK))
    inline = {
        "points-TOTAL_FORMS": 1, "points-INITIAL_FORMS": 1, "points-0-id": point.id,
        "points-0-contact": parent.id, "points-0-kind": "mobile",
        "points-0-value": OTHER_NUMBER, "points-0-is_valid": "on",
    }  # fmt: skip
    response = client.post(change_url(parent), contact_form(parent, **inline))
    assert response.status_code == 302, response.content.decode()[:2000]
    point.refresh_from_db()
    assert point.verified_at is None
    assert statuses() == [("cancelled", "", NUMBER), ("scheduled", "", OTHER_NUMBER)]
