"""carebell's own pages and headers: the start page signs you in; errors are plain
pages of carebell's (never Django's debug pages); every page carries a
Content-Security-Policy and a Permissions-Policy; patient pages are never cached."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.views import defaults

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    return settings


def test_the_start_page_sends_an_anonymous_visitor_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/staff/sign-in/?next=/staff/"
    signin = client.get(response["Location"])
    assert signin.status_code == 200 and 'name="password"' in signin.content.decode()


def test_a_missing_page_in_production_is_carebells_own_404(client, production):
    response = client.get("/no/such/page")
    page = response.content.decode()
    assert response.status_code == 404
    assert "This page does not exist" in page and "carebell" in page
    assert "URLconf" not in page and "admin/" not in page


def test_a_server_error_page_says_nothing_of_the_code():
    response = defaults.server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page and "Traceback" not in page


def test_a_forbidden_page_is_carebells_own():
    request = RequestFactory().get("/")
    response = defaults.permission_denied(request, PermissionDenied("secret detail"))
    page = response.content.decode()
    assert response.status_code == 403
    assert "You cannot open this page" in page and "secret detail" not in page


def test_a_request_for_an_unknown_host_gets_carebells_400(client, production):
    response = client.get("/", HTTP_HOST="elsewhere.example")
    assert response.status_code == 400
    assert "This request could not be understood" in response.content.decode()


def test_a_form_sent_without_its_csrf_token_gets_a_plain_explanation(production):
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "This form could not be sent" in page and "CSRF" not in page


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/no/such/page", "/p/confirm/bad"])
def test_every_page_carries_the_security_policies(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "'unsafe-eval'" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.parametrize("path", ["/p/confirm/bad", "/p/review/bad", "/p/unsub/bad"])
def test_patient_pages_are_never_stored(client, path):
    assert client.get(path)["Cache-Control"] == "no-store"


def test_staff_pages_keep_their_own_cache_rules(client):
    assert "no-store" not in client.get("/").get("Cache-Control", "")


def test_the_sign_in_page_runs_no_inline_script(client):
    page = client.get("/admin/login/").content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert re.findall(r"\son[a-z]+\s*=", page) == []


def test_a_forwarded_scheme_from_a_client_is_not_believed(client, production):
    production.SECURE_SSL_REDIRECT = True
    response = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/admin/login/"
