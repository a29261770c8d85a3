"""STOP and START by text reach the consent ledger as revocation and grant, through
the same webhook every text comes by; the ledger keeps both."""

from __future__ import annotations

import itertools

import pytest
from twilio.request_validator import RequestValidator

from carebell.core.vocab import ContactPointKind
from carebell.people.models import ConsentRecord, ContactPoint
from carebell.simulator.providers import sim_token
from tests import factories

pytestmark = pytest.mark.django_db

PHONE = "+12025550143"
_sids = itertools.count(1)


@pytest.fixture
def consenting(pharmacy, settings):
    settings.BASE_URL = "http://testserver"
    contact = factories.make_contact(factories.make_patient(pharmacy))
    return factories.add_point(contact, ContactPointKind.MOBILE, PHONE, consent_sms=True)


def text(client, body: str):
    data = {"MessageSid": f"SMK{next(_sids):031d}", "From": PHONE, "To": "+12025550199",
            "Body": body}  # fmt: skip
    url = "http://testserver/hooks/sim/inbound"
    signed = RequestValidator(sim_token()).compute_signature(url, data)
    return client.post("/hooks/sim/inbound", data, HTTP_X_TWILIO_SIGNATURE=signed)


def test_stop_then_start_are_kept_as_revocation_then_grant(client, consenting):
    text(client, "STOP")
    assert ContactPoint.objects.get().consent_sms is False
    text(client, "START")
    assert ContactPoint.objects.get().consent_sms is True
    rows = list(
        ConsentRecord.objects.order_by("id").values_list(
            "action", "source", "channel", "address", "evidence", "captured_by_system"
        )
    )
    assert rows == [
        ("revoke", "sms_keyword", "sms", PHONE, "STOP", "sms keyword"),
        ("grant", "sms_keyword", "sms", PHONE, "START", "sms keyword"),
    ]
