"""A family whose mother texts the site from PHONE, and staff of each role."""

from __future__ import annotations

import itertools

import pytest
from twilio.request_validator import RequestValidator

from carebell.core.vocab import ContactPointKind
from carebell.simulator.providers import sim_token
from carebell.sites.roles import FRONT_DESK, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests import factories

PHONE = "+12025550142"
SENDER = "+12025550199"  # the factory's first organization sends from here
_sids = itertools.count(1)


def make_family(site):
    """Lena Ortiz, whose mother Marta texts from PHONE."""
    child = factories.make_patient(site, first_name="Lena", last_name="Ortiz")
    parent = factories.make_contact(child, first_name="Marta", last_name="Ortiz")
    factories.add_point(parent, ContactPointKind.MOBILE, PHONE, consent_sms=True)
    return child


@pytest.fixture
def family(site, settings):
    settings.BASE_URL = "http://testserver"
    return make_family(site)


@pytest.fixture
def desk(site):
    return factories.make_staff(site, FRONT_DESK, username="fran")


@pytest.fixture
def colleague(site):
    return factories.make_staff(site, FRONT_DESK, username="gil")


@pytest.fixture
def admin(site):
    return factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")


@pytest.fixture
def reader(site):
    return factories.make_staff(site, READ_ONLY, username="rhea")


def text(client, body: str, *, sender: str = PHONE, sid: str | None = None, signature=None):
    """Post a signed inbound text to the simulated provider's webhook."""
    data = {"MessageSid": sid or f"SM{next(_sids):032d}", "From": sender, "To": SENDER,
            "Body": body}  # fmt: skip
    url = "http://testserver/hooks/sim/inbound"
    signed = signature or RequestValidator(sim_token()).compute_signature(url, data)
    return client.post("/hooks/sim/inbound", data, HTTP_X_TWILIO_SIGNATURE=signed)
