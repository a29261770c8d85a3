"""`replan.once_at_end`: a feed message that saves a patient, a contact and a number
replans the patient once, at the end, with the same outcome as replanning after each."""

from __future__ import annotations

import pytest

from carebell.core.vocab import ContactPointKind, Kind, OutboxStatus
from carebell.messaging.models import OutboxMessage
from carebell.people import actions
from carebell.people.models import ContactPoint
from carebell.planning import replan
from tests.messaging.engine_setup import enable, family
from tests.planning.test_appointment_planning import plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def counted(monkeypatch):
    calls = []
    judge = replan._judge

    def counting(*args, **kwargs):
        calls.append(1)
        return judge(*args, **kwargs)

    monkeypatch.setattr(replan, "_judge", counting)
    return calls


def change_the_number(parent) -> None:
    """What a feed message does: the contact saved, its number changed."""
    actions.save_contact(parent, source="hl7")
    point = ContactPoint.objects.get(contact=parent, kind=ContactPointKind.MOBILE)
    point.value = "+12025550999"
    actions.save_contact_point(point, source="hl7")
    actions.save_patient(parent.patient, source="hl7")


def test_the_block_replans_once_with_the_outcome_of_replanning_after_each(site, counted):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, _appointment)] = family(site)
    plan(site)
    with replan.once_at_end():
        change_the_number(parent)
        assert counted == []  # nothing yet: the block replans at its end
    assert len(counted) == 1
    pending = OutboxMessage.objects.get(status=OutboxStatus.SCHEDULED)
    assert pending.to_address == "+12025550999"


def test_without_the_block_each_save_replans(site, counted):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, _appointment)] = family(site)
    plan(site)
    change_the_number(parent)
    assert len(counted) == 3
    assert OutboxMessage.objects.get(status=OutboxStatus.SCHEDULED).to_address == "+12025550999"


def test_an_error_in_the_block_replans_nothing(site, counted):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, _appointment)] = family(site)
    with pytest.raises(RuntimeError), replan.once_at_end():
        actions.save_contact(parent, source="hl7")
        raise RuntimeError("the feed message was bad")
    assert counted == []


def test_a_nested_block_replans_with_the_outer_one(site, counted):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, _appointment)] = family(site)
    with replan.once_at_end():
        with replan.once_at_end():
            actions.save_contact(parent, source="hl7")
        assert counted == []
        actions.save_contact(parent, source="hl7")
    assert len(counted) == 1
