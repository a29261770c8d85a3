"""Each staff page for each role, and for a member of another organization."""

from __future__ import annotations

import pytest

from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR

pytestmark = pytest.mark.django_db

ALL_ROLES = [SYSTEM_ADMINISTRATOR, FRONT_DESK, PHARMACY_STAFF, READ_ONLY]
EDITORS = {SYSTEM_ADMINISTRATOR}


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize(
    "path", ["/staff/", "/staff/settings/delivery/", "/staff/automated/", "rule"]
)
def test_every_role_may_read_the_pages(staff_of, rules, role, path):
    client = staff_of(role)
    path = f"/staff/automated/{rules[0].pk}/" if path == "rule" else path
    response = client.get(path)
    assert response.status_code == 200
    assert "Maple Pediatrics Downtown" in response.content.decode()


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_administrators_may_change_delivery_settings(staff_of, role, site):
    client = staff_of(role)
    page = client.get("/staff/settings/delivery/").content.decode()
    response = client.post("/staff/settings/delivery/", {})
    if role in EDITORS:
        assert "Save settings" in page and response.status_code == 200
    else:
        assert "Save settings" not in page and "disabled" in page
        assert response.status_code == 403


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_administrators_may_switch_an_automated_message(staff_of, rules, role):
    client = staff_of(role)
    rule = rules[0]
    response = client.post(f"/staff/automated/{rule.pk}/toggle/", {"enabled": "1"})
    rule.refresh_from_db()
    assert rule.enabled is (role in EDITORS)
    assert response.status_code == (302 if role in EDITORS else 403)
    edit = client.post(f"/staff/automated/{rule.pk}/", {"name": "Changed"})
    assert edit.status_code == (200 if role in EDITORS else 403)


@pytest.mark.parametrize("path", ["/staff/automated/{id}/", "/staff/automated/{id}/toggle/"])
def test_another_organizations_automated_message_is_not_found(outsider, rules, other_rules, path):
    theirs = rules[0]  # `rules` are the site's; the outsider belongs to other_org_site
    response = (
        outsider.post(path.format(id=theirs.pk), {"enabled": "1"})
        if "toggle" in path
        else outsider.get(path.format(id=theirs.pk))
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert not theirs.enabled


def test_an_outsider_sees_only_their_own_site(outsider, rules, other_rules, other_org_site):
    for path in ["/staff/", "/staff/settings/delivery/", "/staff/automated/"]:
        page = outsider.get(path).content.decode()
        assert other_org_site.name in page and "Maple Pediatrics" not in page


def test_an_outsider_cannot_switch_to_another_organizations_site(outsider, site):
    response = outsider.post("/staff/site/", {"site": site.pk, "next": "/staff/"}, follow=True)
    assert "not one of yours" in response.content.decode()
    assert "Maple Pediatrics" not in response.content.decode().replace("not one of yours", "")


def test_the_switcher_offers_and_keeps_only_granted_sites(staff_of, site, pharmacy):
    from carebell.sites.models import StaffMembership

    client = staff_of(FRONT_DESK)
    StaffMembership.objects.create(user=client.user, site=pharmacy)
    page = client.get("/staff/").content.decode()
    assert "Maple Pharmacy" in page and "Elsewhere" not in page
    client.post("/staff/site/", {"site": pharmacy.pk, "next": "/staff/"})
    assert "Today at Maple Pharmacy" in client.get("/staff/").content.decode()
    client.post("/staff/site/", {"site": "not-a-number"})
    assert client.get("/staff/").status_code == 200


def test_a_user_without_any_site_gets_not_found(client, db):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("lonely", password="a-long-test-password"))
    assert client.get("/staff/").status_code == 404


def test_navigation_shows_only_what_the_role_may_open(staff_of):
    page = staff_of(READ_ONLY).get("/staff/").content.decode()
    assert "Automated messages" in page and "Delivery settings" in page
