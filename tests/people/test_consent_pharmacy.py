"""At a pharmacy, which requires opt-in: a ready notice the patient could not get for
want of consent goes once they consent, and one pending when they withdraw is
blocked at once."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.core.vocab import ContactPointKind, FillStep, Kind, Relationship
from carebell.dispatch.dispatcher import Dispatcher
from carebell.messaging.models import OutboxMessage
from carebell.people import consent
from carebell.planning.runner import plan_once
from tests import factories
from tests.messaging.engine_setup import NOW, enable

pytestmark = pytest.mark.django_db

NUMBER = "+12025550161"


def waiting_patient(pharmacy, *, consented=False):
    """A pharmacy patient whose label was printed an hour ago, texts preferred."""
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy, first_name="Ada")
    contact = factories.make_contact(patient, relationship=Relationship.SELF, first_name="Ada")
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER, consent_sms=consented)
    factories.set_preference(contact, "rx_ready", "sms")
    rx = factories.make_prescription(patient)
    at = NOW - dt.timedelta(hours=1)
    factories.make_fill(rx, filled_on=at.date(), step=FillStep.LABEL_PRINTED, label_printed_at=at)
    return point


def counter_consent(point, action="grant", now=NOW):
    return consent.record_consent(point, "sms", action, source="verbal", wording="Yes to texts.",
                                  wording_version="v1", system="test", now=now)  # fmt: skip


def send_due(now) -> None:
    dispatcher = Dispatcher()
    try:
        dispatcher.process_batch(now=now)
    finally:
        dispatcher.close()


def test_the_ready_notice_waits_for_consent_then_goes(pharmacy):
    point = waiting_patient(pharmacy)
    plan_once(now=NOW)
    assert not OutboxMessage.objects.filter(kind=Kind.RX_READY).exists()
    counter_consent(point)
    plan_once(now=NOW + dt.timedelta(minutes=1))
    notice = OutboxMessage.objects.get(kind=Kind.RX_READY)
    assert (notice.status, notice.to_address) == ("scheduled", NUMBER)
    send_due(NOW + dt.timedelta(minutes=2))
    notice.refresh_from_db()
    assert notice.status in ("sent", "delivered")


def test_a_withdrawal_blocks_the_pending_ready_notice(pharmacy):
    point = waiting_patient(pharmacy, consented=True)
    plan_once(now=NOW)
    counter_consent(point, "revoke", NOW + dt.timedelta(seconds=1))
    notice = OutboxMessage.objects.get(kind=Kind.RX_READY)
    assert (notice.status, notice.block_reason) == ("blocked", "no_consent")


def test_consent_granted_again_announces_the_blocked_ready_notice_again(pharmacy):
    point = waiting_patient(pharmacy, consented=True)
    plan_once(now=NOW)
    first = OutboxMessage.objects.get(kind=Kind.RX_READY)
    counter_consent(point, "revoke", now=NOW + dt.timedelta(minutes=1))
    first.refresh_from_db()
    assert first.status == "blocked"
    counter_consent(point, now=NOW + dt.timedelta(minutes=2))
    plan_once(now=NOW + dt.timedelta(minutes=3))
    again = OutboxMessage.objects.exclude(pk=first.pk).get(kind=Kind.RX_READY)
    assert (again.status, again.to_address, again.entity_id) == (
        "scheduled",
        NUMBER,
        first.entity_id,
    )
    plan_once(now=NOW + dt.timedelta(minutes=4))
    assert OutboxMessage.objects.filter(kind=Kind.RX_READY).count() == 2  # once, not again


def test_a_pharmacy_that_waits_for_consent_applies_its_defaults_then(pharmacy):
    from carebell.people.models import ContactPreference
    from carebell.sites.models import DeliverySettings

    DeliverySettings.objects.filter(site=pharmacy).update(
        patient_defaults={"rx_ready": "sms"}, apply_defaults_on_consent=True
    )
    patient = factories.make_patient(pharmacy)
    contact = factories.make_contact(patient, relationship=Relationship.SELF)
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    assert not ContactPreference.objects.filter(contact=contact).exists()
    counter_consent(point)
    preference = ContactPreference.objects.get(contact=contact, category="rx_ready")
    assert preference.value == "sms"
