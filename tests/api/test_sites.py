"""Sites and delivery settings through the API."""

from __future__ import annotations

from carebell.audit.models import AuditEvent
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests.api.conftest import assert_problem


def test_it_lists_the_sites_of_the_tokens_user_only(api, site, other_org_site):
    response = api.get("/api/v1/sites")
    assert response.status_code == 200
    body = response.json()
    assert [s["id"] for s in body["items"]] == [site.pk] and body["next"] is None
    assert body["items"][0]["time_zone"] == "America/New_York"


def test_it_pages_with_a_cursor(api, site, org):
    from carebell.sites.models import StaffMembership
    from tests import factories

    for _ in range(3):
        StaffMembership.objects.create(user=api.user, site=factories.make_site(org))
    first = api.get("/api/v1/sites", {"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next"]
    second = api.get("/api/v1/sites", {"limit": 2, "cursor": first["next"]}).json()
    assert len(second["items"]) == 2 and second["next"] is None
    ids = [s["id"] for s in first["items"] + second["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_a_bad_cursor_is_a_problem(api, site):
    assert_problem(api.get("/api/v1/sites", {"cursor": "!!nonsense"}), 400)


def test_it_reads_one_site_with_an_etag(api, site):
    response = api.get(f"/api/v1/sites/{site.pk}")
    assert response.status_code == 200 and response["ETag"].startswith('"')
    assert response.json()["name"] == site.name


def test_another_organizations_site_does_not_exist(api, other_org_site):
    assert_problem(api.get(f"/api/v1/sites/{other_org_site.pk}"), 404)
    assert_problem(api.patch(f"/api/v1/sites/{other_org_site.pk}", {"name": "x"}), 404)
    assert_problem(api.get(f"/api/v1/sites/{other_org_site.pk}/delivery-settings"), 404)


def test_it_changes_a_site_through_the_entry_point(api, site):
    response = api.patch(f"/api/v1/sites/{site.pk}", {"phone": "+12025550177"})
    assert response.status_code == 200, response.content
    site.refresh_from_db()
    assert site.phone == "+12025550177"
    assert AuditEvent.objects.filter(
        action="change", object_type="sites.site", object_id=str(site.pk)
    ).exists()


def test_a_stale_if_match_is_refused(api, site):
    etag = api.get(f"/api/v1/sites/{site.pk}")["ETag"]
    assert (
        api.patch(
            f"/api/v1/sites/{site.pk}", {"phone": "+12025550177"}, {"If-Match": etag}
        ).status_code
        == 200
    )
    body = assert_problem(
        api.patch(f"/api/v1/sites/{site.pk}", {"phone": "+12025550166"}, {"If-Match": etag}), 412
    )
    assert "If-Match" in body["detail"]
    site.refresh_from_db()
    assert site.phone == "+12025550177"


def test_an_invalid_time_zone_is_refused_with_the_field(api, site):
    body = assert_problem(api.patch(f"/api/v1/sites/{site.pk}", {"time_zone": "Mars/Olympus"}), 422)
    assert [e["field"] for e in body["errors"]] == ["time_zone"]


def test_unknown_fields_and_nul_characters_are_refused(api, site):
    assert_problem(api.patch(f"/api/v1/sites/{site.pk}", {"colour": "red"}), 422)
    assert_problem(api.patch(f"/api/v1/sites/{site.pk}", {"name": "a\x00b"}), 422)


def test_a_front_desk_token_cannot_change_delivery_settings(api_as, site):
    front = api_as(FRONT_DESK)
    assert front.get(f"/api/v1/sites/{site.pk}/delivery-settings").status_code == 200
    assert_problem(
        front.patch(f"/api/v1/sites/{site.pk}/delivery-settings", {"only_verified": True}), 403
    )


def test_delivery_settings_change_and_replan(api, site):
    response = api.patch(
        f"/api/v1/sites/{site.pk}/delivery-settings", {"delivery_days": ["mon", "tue"]}
    )
    assert response.status_code == 200, response.content
    site.delivery.refresh_from_db()
    assert site.delivery.delivery_days == ["mon", "tue"]
    assert_problem(
        api.patch(f"/api/v1/sites/{site.pk}/delivery-settings", {"delivery_days": ["someday"]}), 422
    )


def test_a_read_only_token_reads_but_does_not_write(api_as, site):
    reader = api_as(READ_ONLY)
    assert reader.get(f"/api/v1/sites/{site.pk}").status_code == 200
    assert_problem(reader.patch(f"/api/v1/sites/{site.pk}", {"name": "Renamed"}), 403)
