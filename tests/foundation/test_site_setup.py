"""A new site starts with settings, every default format, and rules switched off."""

from __future__ import annotations

import pytest

from carebell.messaging.models import AutomatedMessage, MessageTemplate
from carebell.sites.models import DeliverySettings, Site
from carebell.sites.setup import set_up_site

pytestmark = pytest.mark.django_db


def test_a_new_pharmacy_gets_defaults_with_rules_disabled(org):
    site = Site.objects.create(
        organization=org,
        name="Corner Pharmacy",
        kind="pharmacy",
        time_zone="America/Chicago",
        phone="+13125550100",
    )
    set_up_site(site)
    set_up_site(site)
    delivery = DeliverySettings.objects.get(site=site)
    assert delivery.require_opt_in is True
    assert MessageTemplate.objects.filter(site=site).exists()
    rules = AutomatedMessage.objects.filter(site=site)
    assert rules.exists() and not rules.filter(enabled=True).exists()
    assert rules.count() == len({r.kind for r in rules})


def test_the_roles_are_restored_with_their_permissions_after_every_migrate(db):
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from carebell.sites.roles import ROLE_PERMISSIONS, SYSTEM_ADMINISTRATOR

    Group.objects.filter(name=SYSTEM_ADMINISTRATOR).delete()
    call_command("migrate", verbosity=0)
    admin = Group.objects.get(name=SYSTEM_ADMINISTRATOR)
    assert sorted(admin.permissions.values_list("codename", flat=True)) == sorted(
        ROLE_PERMISSIONS[SYSTEM_ADMINISTRATOR]
    )
