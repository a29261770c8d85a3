"""API personas: a client holding a token of a staff member of `site` in a role, and
one of another organization."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from carebell.api import tokens
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories

PROBLEM = "application/problem+json"


class ApiClient:
    """Django's test client speaking JSON with a bearer token."""

    def __init__(self, secret: str = "", user=None, token=None):
        self.client = Client()
        self.secret, self.user, self.token = secret, user, token

    def _headers(self, headers):
        base = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        return {**base, **(headers or {})}

    def get(self, path, params=None, headers=None):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def _send(self, method, path, body, headers):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        call = getattr(self.client, method)
        return call(path, data, content_type="application/json", headers=self._headers(headers))

    def post(self, path, body=None, headers=None):
        return self._send("post", path, {} if body is None else body, headers)

    def put(self, path, body=None, headers=None):
        return self._send("put", path, {} if body is None else body, headers)

    def patch(self, path, body=None, headers=None):
        return self._send("patch", path, {} if body is None else body, headers)

    def delete(self, path, headers=None):
        return self.client.delete(path, headers=self._headers(headers))


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_as(site):
    """api_as(role, at=site) → an ApiClient with a token of a staff member in `role`."""

    def make(role: str = SYSTEM_ADMINISTRATOR, at=None):
        user = factories.make_staff(at or site, role)
        token, secret = tokens.issue(user, "test")
        return ApiClient(secret, user, token)

    return make


@pytest.fixture
def api(api_as):
    return api_as(SYSTEM_ADMINISTRATOR)


@pytest.fixture
def outsider_api(api_as, other_org_site):
    return api_as(SYSTEM_ADMINISTRATOR, at=other_org_site)


def assert_problem(response, status: int):
    """The response is an RFC 9457 problem with this status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"]
    return body
