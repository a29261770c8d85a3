"""The staff app's API token pages and the API reference page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from carebell.api import tokens
from carebell.api.models import ApiToken
from carebell.audit.models import AuditEvent
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories


@pytest.fixture
def staff(site):
    user = factories.make_staff(site, READ_ONLY)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def test_any_signed_in_staff_member_creates_a_token_shown_once(staff):
    response = staff.post("/staff/account/api-tokens/", {"name": "practice sync", "expires": "30"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-token">(cb_[^<]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(user=staff.user)
    assert token.secret_hash == tokens.digest(secret) and token.expires_at is not None
    again = staff.get("/staff/account/api-tokens/").content.decode()
    assert secret not in again and token.prefix in again and "practice sync" in again


def test_a_token_without_a_name_is_refused(staff):
    response = staff.post("/staff/account/api-tokens/", {"name": "", "expires": ""})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_it_revokes_ones_own_token_and_audits_it(staff):
    token, _secret = tokens.issue(staff.user, "feed")
    response = staff.post(f"/staff/account/api-tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == staff.user
    assert AuditEvent.objects.filter(
        action="revoke", object_id=str(token.pk), actor=staff.user
    ).exists()
    assert "Revoked" in staff.get("/staff/account/api-tokens/").content.decode()


def test_nobody_lists_or_revokes_another_persons_token(staff, site):
    colleague = factories.make_staff(site, FRONT_DESK)
    token, _secret = tokens.issue(colleague, "theirs")
    assert "theirs" not in staff.get("/staff/account/api-tokens/").content.decode()
    assert staff.post(f"/staff/account/api-tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_pages_need_a_signed_in_user(client, site):
    assert client.get("/staff/account/api-tokens/").status_code == 302
    assert client.get("/staff/api/").status_code == 302
    assert client.get("/staff/api/assets/swagger-ui-bundle.js").status_code == 302


def test_the_header_links_to_the_tokens(staff):
    assert 'href="/staff/account/api-tokens/"' in staff.get("/staff/").content.decode()


def test_the_reference_page_uses_local_scripts_under_a_strict_policy(staff):
    response = staff.get("/staff/api/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert (
        "unsafe-inline"
        not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    )
    assert 'id="swagger-settings" type="application/json"' in page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts == [
        "/staff/api/assets/swagger-ui-bundle.js",
        "/staff/api/assets/swagger-ui-init.js",
    ]
    asset = staff.get(scripts[0])
    assert asset.status_code == 200 and asset["Content-Type"] == "text/javascript"
    assert staff.get("/staff/api/assets/..%2Fsettings.py").status_code == 404
