"""The send-time checks judge the contact's eligibility again, as a last line behind
the replan every change makes: a door that wrote a contact directly cannot make a
message go to someone no longer eligible."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.appointments import actions
from carebell.core.vocab import Kind
from carebell.dispatch import checks
from carebell.messaging.models import OutboxMessage
from carebell.people.models import Contact, ContactPoint, ContactPreference
from carebell.planning.policies import PolicyCache
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db


def planned(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    kids = family(site)
    for _child, _parent, appointment in kids:
        actions.appointment_saved(appointment, None, now=NOW)
    return kids


def verdicts_at_send():
    """The send-time verdicts for every stored message, at the first one's time."""
    related = ("site__delivery", "contact_point", "contact", "patient")
    messages = list(OutboxMessage.objects.select_related(*related))
    return checks.check_at_send(messages, min(m.planned_at for m in messages), PolicyCache())


def only_verdict():
    [verdict] = verdicts_at_send().values()
    return verdict.status, verdict.block_reason, [r.code.value for r in verdict.reasons]


def test_a_contact_without_authority_is_blocked_at_send_time(site):
    [(_child, parent, _)] = planned(site)
    Contact.objects.filter(id=parent.id).update(authority="none")
    assert only_verdict() == ("blocked", "ineligible", ["contact_authority_none"])


def test_a_contact_whose_end_date_passed_is_blocked_at_send_time(site):
    [(_child, parent, _)] = planned(site)
    Contact.objects.filter(id=parent.id).update(end_date=NOW.date())
    assert only_verdict() == ("blocked", "ineligible", ["contact_end_dated"])


def test_a_no_contact_preference_is_blocked_at_send_time(site):
    [(_child, parent, _)] = planned(site)
    ContactPreference.objects.filter(contact=parent).update(value="none")
    assert only_verdict() == ("blocked", "ineligible", ["preference_none"])


def test_a_preference_moved_to_email_blocks_the_planned_text(site):
    [(_child, parent, _)] = planned(site)
    ContactPreference.objects.filter(contact=parent).update(value="email")
    assert only_verdict() == ("blocked", "ineligible", ["preference_changed"])


def test_a_changed_number_is_blocked_at_send_time(site):
    [(_child, parent, _)] = planned(site)
    ContactPoint.objects.filter(contact=parent).update(value="+12025550177")
    assert only_verdict() == ("blocked", "ineligible", ["contact_point_changed"])


def test_a_number_no_longer_readable_is_blocked_at_send_time(site):
    [(_child, parent, _)] = planned(site)
    ContactPoint.objects.filter(contact=parent).update(is_valid=False)
    assert only_verdict() == ("blocked", "ineligible", ["contact_point_unparseable"])


def test_an_eligible_contact_passes(site):
    planned(site)
    assert verdicts_at_send() == {}


def test_a_blocked_message_gives_back_its_key_so_the_contact_is_planned_again_later(site):
    [(_child, parent, appointment)] = planned(site)
    Contact.objects.filter(id=parent.id).update(authority="none")
    checks.apply_verdicts(verdicts_at_send(), NOW)
    blocked = OutboxMessage.objects.get()
    assert (blocked.status, blocked.dedupe_key) == ("blocked", None)
    Contact.objects.filter(id=parent.id).update(authority="joint")
    actions.appointment_changed(appointment, now=NOW, why=None)
    assert sorted(OutboxMessage.objects.values_list("status", flat=True)) == [
        "blocked",
        "scheduled",
    ]


def test_the_contacts_are_read_once_per_batch_not_once_per_message(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])

    def add_families(count):
        for _ in range(count):
            number = f"+1202555{OutboxMessage.objects.count() + 200:04d}"
            [(_child, _parent, appointment)] = family(site, mobile=number)
            actions.appointment_saved(appointment, None, now=NOW)

    add_families(1)
    with CaptureQueriesContext(connection) as one:
        verdicts_at_send()
    add_families(5)
    assert OutboxMessage.objects.count() == 6
    with CaptureQueriesContext(connection) as six:
        verdicts_at_send()
    assert len(six.captured_queries) == len(one.captured_queries)
