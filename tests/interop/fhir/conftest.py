"""A FHIR client with a carebell API token, acting as a front-desk member of `site`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.test import Client

from carebell.api import tokens
from carebell.interop.fhir import parsing
from carebell.sites.roles import FRONT_DESK
from tests import factories

VECTORS = Path(__file__).resolve().parents[4] / "shared" / "vectors" / "fhir"
FHIR = "application/fhir+json"


def vector(name: str) -> dict:
    """A shared example resource, as published (a fresh copy each time)."""
    return copy.deepcopy(json.loads((VECTORS / name).read_text(encoding="utf-8")))


def vector_bytes(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


class FhirClient:
    """Django's test client speaking FHIR JSON with a bearer token."""

    def __init__(self, secret: str, user):
        self.client = Client()
        self.user = user
        self.headers = {"Authorization": f"Bearer {secret}"}

    def _send(self, method: str, path: str, body=None, **headers):
        data = body if isinstance(body, bytes | str) or body is None else json.dumps(body)
        call = getattr(self.client, method)
        kwargs = {"headers": {**self.headers, **headers}}
        if body is not None:
            kwargs.update(data=data, content_type=headers.pop("content_type", FHIR))
            kwargs["headers"] = {**self.headers, **headers}
        response = call(f"/fhir/R4/{path}", **kwargs)
        response.json_body = json.loads(response.content) if response.content else None
        if response.json_body is not None:
            # What carebell answers is valid FHIR R4 itself (resources, Bundles, outcomes).
            parsing.validate(response.json_body)
        return response

    def get(self, path, **headers):
        return self._send("get", path, **headers)

    def post(self, path, body, **headers):
        return self._send("post", path, body, **headers)

    def put(self, path, body, **headers):
        return self._send("put", path, body, **headers)


def client_for(user) -> FhirClient:
    _token, secret = tokens.issue(user, "fhir test")
    return FhirClient(secret, user)


@pytest.fixture
def fhir(site):
    return client_for(factories.make_staff(site, FRONT_DESK))


@pytest.fixture
def other_fhir(other_org_site):
    return client_for(factories.make_staff(other_org_site, FRONT_DESK))


def create(fhir: FhirClient, resource: dict, **headers) -> dict:
    response = fhir.post(resource["resourceType"], resource, **headers)
    assert response.status_code == 201, response.json_body
    return response.json_body


def patient_in(fhir: FhirClient, **overrides) -> dict:
    """A minimal patient with a mobile number, created through FHIR."""
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": overrides.pop("mrn", "MRN-1")}],
        "name": [{"family": "Rivera", "given": ["Sam"]}],
        "birthDate": "2015-06-01",
        "telecom": [{"system": "phone", "value": "+12025550123", "use": "mobile"}],
        **overrides,
    }
    return create(fhir, resource)


def make_reachable(patient_id, category: str = "reminders", channel: str = "sms") -> None:
    """What staff do once a patient arrives (SPEC §3.3, §3.5): a preference for the
    self contact and the SMS consent recorded for its mobile number."""
    from carebell.people.models import Contact, ContactPoint

    contact = Contact.objects.get(patient_id=patient_id, relationship="self")
    factories.set_preference(contact, category, channel)
    ContactPoint.objects.filter(contact=contact).update(consent_sms=True)
