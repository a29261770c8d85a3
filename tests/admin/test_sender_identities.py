"""Sending identities: written one way, each held by one organization, whichever door
they come through (the admin's form, code, an upgrade's migration)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError
from django.urls import reverse

from carebell.messaging.models import InboundMessage
from carebell.sites.models import SenderIdentity, Site, SiteSenderNumber
from carebell.sites.roles import FRONT_DESK, SYSTEM_ADMINISTRATOR
from tests import factories

pytestmark = pytest.mark.django_db

SERVICE = "MG" + "a" * 32
TAKEN = "is already a sender of another organization"
migration = importlib.import_module("carebell.sites.migrations.0003_sender_identities")


def site_form(site: Site, numbers: list[str] = (), **changes) -> dict:
    form = {
        "organization": site.organization_id, "name": site.name, "kind": site.kind,
        "time_zone": site.time_zone, "phone_region": site.phone_region, "phone": site.phone,
        "address": site.address, "sms_from": site.sms_from, "email_from": site.email_from,
        "caller_id": site.caller_id, "providers": "{}",
        "delivery-TOTAL_FORMS": 0, "delivery-INITIAL_FORMS": 0,
        "departments-TOTAL_FORMS": 0, "departments-INITIAL_FORMS": 0,
        "review_links-TOTAL_FORMS": 0, "review_links-INITIAL_FORMS": 0,
        "sender_numbers-TOTAL_FORMS": len(numbers), "sender_numbers-INITIAL_FORMS": 0,
    }  # fmt: skip
    for n, number in enumerate(numbers):
        form[f"sender_numbers-{n}-number"] = number
    return {**form, **changes}


def save_site(client, site: Site, numbers: list[str] = (), **changes):
    url = reverse("admin:sites_site_change", args=[site.pk])
    return client.post(url, site_form(site, numbers, **changes))


def holder(value: str) -> int | None:
    return SenderIdentity.objects.filter(value=value).values_list("organization", flat=True).first()


def test_an_org_b_administrator_cannot_take_org_a_number(client, site, other_org_site):
    theirs = other_org_site.sms_from
    client.force_login(factories.make_staff(other_org_site, SYSTEM_ADMINISTRATOR))
    response = save_site(client, other_org_site, sms_from="(202) 555-0199")
    assert response.status_code == 200
    assert f"+12025550199 {TAKEN}" in response.content.decode()
    other_org_site.refresh_from_db()
    assert other_org_site.sms_from == theirs
    assert holder("+12025550199") == site.organization_id


def test_an_org_b_administrator_cannot_list_org_a_number_in_a_messaging_service(
    client, site, other_org_site
):
    client.force_login(factories.make_staff(other_org_site, SYSTEM_ADMINISTRATOR))
    response = save_site(client, other_org_site, ["202-555-0199"], sms_from=SERVICE)
    assert response.status_code == 200
    assert TAKEN in response.content.decode()
    assert not SiteSenderNumber.objects.exists()


def test_nor_take_org_a_caller_id_or_email_sender(admin_client, site, other_org_site):
    site.caller_id = "+12025550143"
    site.save()
    response = save_site(
        admin_client, other_org_site, caller_id="202 555 0143", email_from="hello@EXAMPLE.org"
    )
    page = response.content.decode()
    assert f"+12025550143 {TAKEN}" in page and f"hello@example.org {TAKEN}" in page


def test_identities_are_saved_in_one_spelling(admin_client, site):
    response = save_site(
        admin_client, site, sms_from="(202) 555-0142", caller_id="202.555.0143",
        email_from="Front.Desk@Maple.EXAMPLE.org",
    )  # fmt: skip
    assert response.status_code == 302
    site.refresh_from_db()
    assert (site.sms_from, site.caller_id, site.email_from) == (
        "+12025550142", "+12025550143", "Front.Desk@maple.example.org"
    )  # fmt: skip
    assert holder("+12025550142") == site.organization_id
    assert holder("+12025550199") is None


def test_sites_of_one_organization_may_share_a_sender(admin_client, site, pharmacy):
    response = save_site(admin_client, pharmacy, sms_from=site.sms_from)
    assert response.status_code == 302
    assert SenderIdentity.objects.filter(value=site.sms_from).count() == 1


@pytest.mark.parametrize(
    ("sms_from", "error"),
    [
        ("call us", "is not a phone number"),
        ("+1202555", "is not a valid phone number"),
        ("MG123", "is not a Messaging Service id"),
    ],
)
def test_an_sms_sender_that_is_none_is_refused_with_a_clear_error(
    admin_client, site, sms_from, error
):
    response = save_site(admin_client, site, sms_from=sms_from)
    assert response.status_code == 200
    assert error in response.content.decode()


def test_carebells_default_sender_is_left_blank_rather_than_copied(admin_client, site, settings):
    settings.TWILIO_FROM = "+12025550150"
    response = save_site(admin_client, site, sms_from="+1 202 555 0150")
    assert response.status_code == 200
    assert "default SMS sender: leave the field blank" in response.content.decode()


def test_a_messaging_service_lists_its_numbers(admin_client, site):
    response = save_site(admin_client, site, ["202-555-0160", "+12025550161"], sms_from=SERVICE)
    assert response.status_code == 302, response.content.decode()[:2000]
    numbers = SiteSenderNumber.objects.filter(site=site).values_list("number", flat=True)
    assert sorted(numbers) == ["+12025550160", "+12025550161"]
    assert holder("+12025550160") == holder(SERVICE) == site.organization_id


def test_numbers_are_listed_only_for_a_site_that_sends_through_a_service(admin_client, site):
    response = save_site(admin_client, site, ["202-555-0160"])
    assert response.status_code == 200
    assert "List numbers only for a site that sends through a Messaging" in (
        response.content.decode()
    )


def test_the_database_refuses_a_second_organization_on_one_sender(site, other_org_site):
    other_org_site.sms_from = "+1 202-555-0199"  # org A's, spelled another way
    with pytest.raises(IntegrityError):
        other_org_site.save()


def test_a_sender_an_organization_gives_up_can_be_taken_by_another(site, other_org_site):
    theirs = other_org_site.sms_from
    other_org_site.sms_from = "+12025550150"
    other_org_site.save()
    site.sms_from = theirs
    site.save()
    assert holder(theirs) == site.organization_id


def test_a_deleted_service_number_is_released(site, other_org_site):
    other_org_site.sms_from = SERVICE
    other_org_site.save()
    number = SiteSenderNumber.objects.create(site=other_org_site, number="+12025550160")
    number.delete()
    assert holder("+12025550160") is None


def test_an_unmatched_text_is_listed_for_superusers_only(admin_client, client, site):
    InboundMessage.objects.create(
        site=None, channel="sms", provider="twilio", provider_message_id="SM-lost",
        from_address="+12025550142", to_address="+12025550177", body="HELP",
        received_at="2026-11-25T15:00:00Z", needs_review=True,
    )  # fmt: skip
    url = reverse("admin:messaging_inboundmessage_changelist")
    assert "+12025550142" in admin_client.get(url).content.decode()
    client.force_login(factories.make_staff(site, FRONT_DESK))
    assert "+12025550142" not in client.get(url).content.decode()


def legacy(site: Site, **values) -> None:
    """Values as an installation held them before senders had one owner each."""
    Site.objects.filter(pk=site.pk).update(**values)
    SenderIdentity.objects.all().delete()


def test_the_migration_writes_existing_senders_in_one_spelling(site, pharmacy):
    legacy(site, sms_from="(202) 555-0199", email_from="Hello@EXAMPLE.org")
    legacy(pharmacy, sms_from="+12025550199", caller_id="not a number")
    migration.hold_existing_senders(apps, None)
    site.refresh_from_db()
    pharmacy.refresh_from_db()
    assert (site.sms_from, site.email_from) == ("+12025550199", "Hello@example.org")
    assert pharmacy.caller_id == "not a number"  # kept for an administrator to correct
    held = set(SenderIdentity.objects.values_list("value", "organization"))
    assert ("+12025550199", site.organization_id) in held


def test_the_migration_stops_when_two_organizations_share_a_sender(site, other_org_site):
    legacy(other_org_site, sms_from="202-555-0199")
    with pytest.raises(migration.SharedSender) as stopped:
        migration.hold_existing_senders(apps, None)
    assert f"+12025550199: sites {site.pk}, {other_org_site.pk}" in str(stopped.value)
    assert not SenderIdentity.objects.exists()
