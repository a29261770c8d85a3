"""The one access rule: what a staff member holds at a site, asked once per page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.sites import access
from carebell.sites.roles import FRONT_DESK, ROLE_PERMISSIONS
from tests import factories

pytestmark = pytest.mark.django_db

EVERY = {p for perms in ROLE_PERMISSIONS.values() for p in perms}


def test_held_at_is_can_for_each_permission(site, other_org_site):
    desk = factories.make_staff(site, FRONT_DESK)
    held = access.held_at(desk, EVERY, site)
    assert held == set(ROLE_PERMISSIONS[FRONT_DESK])
    assert held == {p for p in EVERY if access.can(desk, p, site)}
    assert access.held_at(desk, EVERY, other_org_site) == set()
    assert access.held_at(desk, EVERY, None) == set()


def test_held_at_asks_about_the_site_once(site):
    desk = factories.make_staff(site, FRONT_DESK)
    access.held_at(desk, EVERY, site)  # Django caches the user's permissions
    with CaptureQueriesContext(connection) as queries:
        access.held_at(desk, EVERY, site)
    assert len(queries) == 1
