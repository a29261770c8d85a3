"""Staff users of every role at the `site` persona, and one of another organization."""

from __future__ import annotations

import pytest

from carebell.messaging.models import AutomatedMessage
from carebell.planning.rules_defaults import default_rules
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests import factories

ROLES = [SYSTEM_ADMINISTRATOR, FRONT_DESK, PHARMACY_STAFF, READ_ONLY]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def rules(site):
    return AutomatedMessage.objects.bulk_create(default_rules(site))


@pytest.fixture
def other_rules(other_org_site):
    return AutomatedMessage.objects.bulk_create(default_rules(other_org_site))


@pytest.fixture
def staff_of(site):
    """staff_of(role) → a client signed in as a staff member of `site` with that role."""
    from django.test import Client

    def make(role: str, at=None):
        user = factories.make_staff(at or site, role)
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def admin_client_(staff_of):
    return staff_of(SYSTEM_ADMINISTRATOR)


@pytest.fixture
def outsider(other_org_site):
    """A System Administrator of another organization."""
    from django.test import Client

    user = factories.make_staff(other_org_site, SYSTEM_ADMINISTRATOR)
    client = Client()
    client.force_login(user)
    client.user = user
    return client
