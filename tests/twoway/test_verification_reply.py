"""A verification code texted back (SPEC §3.5): the inbound text handler hands six
digits from a number with a code out to carebell.people.verification."""

from __future__ import annotations

import itertools
import re

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import InboundMessage, OutboxMessage
from carebell.people import verification
from carebell.people.models import ContactPoint, VerificationCode
from carebell.simulator.providers import sim_token
from tests import factories

pytestmark = pytest.mark.django_db

PHONE = "+12025550142"
_sids = itertools.count(1)


@pytest.fixture
def mobile(site, settings):
    settings.BASE_URL = "http://testserver"
    contact = factories.make_contact(factories.make_patient(site))
    return factories.add_point(contact, ContactPointKind.MOBILE, PHONE)


def text(client, body: str):
    data = {"MessageSid": f"SMV{next(_sids):031d}", "From": PHONE, "To": "+12025550199",
            "Body": body}  # fmt: skip
    url = "http://testserver/hooks/sim/inbound"
    signed = RequestValidator(sim_token()).compute_signature(url, data)
    return client.post("/hooks/sim/inbound", data, HTTP_X_TWILIO_SIGNATURE=signed)


def sent_digits() -> str:
    body = OutboxMessage.objects.get(kind="verification").body
    return re.search(r"\b(\d{6})\b", body).group(1)


def test_texting_the_code_back_verifies_the_number(client, mobile):
    verification.issue_code(mobile, system="test")
    response = text(client, f"{sent_digits()}\n")
    assert response.status_code in (200, 204)
    point = ContactPoint.objects.get()
    assert point.verified_at is not None and point.verified_method == "reply"
    assert InboundMessage.objects.get().needs_review is False
    reply = OutboxMessage.objects.get(kind="keyword_reply")
    assert reply.to_address == PHONE and "is verified" in reply.body


def test_a_wrong_code_texted_back_spends_a_try(client, mobile):
    verification.issue_code(mobile, system="test")
    text(client, f"{(int(sent_digits()) + 1) % 10**6:06d}")
    assert VerificationCode.objects.get().wrong_tries == 1
    assert ContactPoint.objects.get().verified_at is None
    assert "not right" in OutboxMessage.objects.get(kind="keyword_reply").body


def test_six_digits_with_no_code_out_are_left_for_staff(client, mobile):
    text(client, "123456")
    assert ContactPoint.objects.get().verified_at is None
    assert VerificationCode.objects.count() == 0
    assert InboundMessage.objects.get().intent == "free_text"
    assert not OutboxMessage.objects.filter(kind="keyword_reply").exists()


def test_an_expired_code_texted_back_verifies_nothing(client, mobile):
    verification.issue_code(mobile, system="test")
    VerificationCode.objects.update(expires_at=timezone.now())
    text(client, sent_digits())
    assert ContactPoint.objects.get().verified_at is None
