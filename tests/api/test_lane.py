"""Token calls take the machine lane: the REST API and FHIR, called with a bearer token,
skip the page middleware and answer as through the whole stack."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import get_resolver, resolve

from carebell.api.door import DOCUMENT_NAMES
from carebell.web.lane import is_token_door
from tests import factories
from tests.api.conftest import assert_problem
from tests.lane import skipped_the_page_middleware

pytestmark = pytest.mark.django_db


def test_a_token_call_skips_the_page_middleware_and_answers_in_full(api, site):
    patient = factories.make_patient(site)
    response = api.get(f"/api/v1/patients/{patient.pk}")
    assert response.status_code == 200 and response.json()["id"] == patient.pk
    assert skipped_the_page_middleware(response) and not response.cookies
    assert response["ETag"] and int(response["Content-Length"]) == len(response.content)


def test_a_token_calls_answer_carries_the_pages_security_headers(api, site):
    page = Client().get("/no/such/page")
    patient = factories.make_patient(site)
    answers = [
        api.get(f"/api/v1/patients/{patient.pk}"),
        api.get("/api/v1/patients/999999"),  # a 404 problem, in the lane too
        api.get("/api/v1/no-such-route"),
    ]
    assert [a.status_code for a in answers] == [200, 404, 404]
    for response in answers:
        assert skipped_the_page_middleware(response)
        for header in ("Content-Security-Policy", "X-Frame-Options", "Permissions-Policy"):
            assert response[header] == page[header]
        assert response["X-Content-Type-Options"] == "nosniff"


def test_an_unknown_token_is_refused_in_the_lane(db):
    response = Client().get("/api/v1/patients", headers={"Authorization": "Bearer cb_nope"})
    assert_problem(response, 401)
    assert skipped_the_page_middleware(response)


def test_a_call_without_a_token_takes_the_whole_stack(db):
    response = Client().get("/api/v1/patients")
    assert_problem(response, 401)
    assert hasattr(response.wsgi_request, "user")


def test_the_description_takes_the_whole_stack_even_with_a_token(api):
    # Signed-in staff read it with their session (tests/api/test_conventions.py).
    document = api.get("/api/v1/openapi.json")
    assert document.status_code == 200 and hasattr(document.wsgi_request, "user")


def test_a_token_call_at_a_host_not_allowed_is_refused_400(api, settings):
    settings.ALLOWED_HOSTS = ["carebell.example.org"]
    response = api.get("/api/v1/patients", headers={"Host": "evil.example"})
    assert response.status_code == 400


def _api_views():
    resolver = get_resolver()
    (api_urls,) = [p for p in resolver.url_patterns if str(p.pattern) == "api/v1/"]
    return [(p.name, p.callback) for p in api_urls.url_patterns]


def test_every_api_route_but_its_description_is_a_token_door():
    views = _api_views()
    assert len(views) > 20
    for name, view in views:
        assert is_token_door(view) is (name not in DOCUMENT_NAMES), name


@pytest.mark.parametrize(
    "path", ["/fhir/R4/Patient", "/fhir/R4/Patient/1", "/fhir/R4/", "/fhir/R4/Appointment"]
)
def test_the_fhir_routes_are_token_doors(path):
    assert is_token_door(resolve(path).func)


def test_fhirs_metadata_needs_no_token_and_takes_the_whole_stack(db):
    response = Client().get("/fhir/R4/metadata")
    assert response.status_code == 200 and hasattr(response.wsgi_request, "user")
    assert not is_token_door(resolve("/fhir/R4/metadata").func)
