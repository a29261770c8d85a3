"""The integrator's story, with only the README and the OpenAPI document: a token
from the staff app, then a patient, a contact with an email address and an
appointment through the API, and the planned reminders seen through explain."""

from __future__ import annotations

import re

from django.test import Client

from carebell.messaging.models import AutomatedMessage
from carebell.planning.rules_defaults import default_rules
from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.api.conftest import ApiClient


def test_an_integrator_adds_a_patient_and_sees_the_planned_reminders(site):
    rules = AutomatedMessage.objects.bulk_create(default_rules(site))
    AutomatedMessage.objects.filter(pk__in=[r.pk for r in rules], kind="appt_reminder").update(
        enabled=True
    )
    staff = factories.make_staff(site, FRONT_DESK)
    browser = Client()
    browser.force_login(staff)
    page = browser.post("/staff/account/api-tokens/", {"name": "practice system", "expires": "90"})
    secret = re.search(r'id="new-token">(cb_[^<]+)<', page.content.decode()).group(1)
    api = ApiClient(secret)

    document = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/patients" in document["paths"] and document["openapi"].startswith("3.1")
    site_id = api.get("/api/v1/sites").json()["items"][0]["id"]
    patient = api.post(
        "/api/v1/patients",
        {"site_id": site_id, "external_id": "PM-1001", "first_name": "Rosa", "last_name": "Diaz"},
        headers={"Idempotency-Key": "patient-PM-1001"},
    ).json()
    contact = api.post(
        f"/api/v1/patients/{patient['id']}/contacts",
        {"position": 1, "relationship": "self", "first_name": "Rosa", "last_name": "Diaz"},
    ).json()
    point = api.post(
        f"/api/v1/contacts/{contact['id']}/points", {"kind": "email", "value": "Rosa@Example.org"}
    )
    assert point.json()["value"] == "Rosa@example.org"  # the domain is normalised
    preference = api.put(
        f"/api/v1/contacts/{contact['id']}/preferences/reminders", {"value": "email"}
    )
    assert preference.status_code == 200, preference.content
    appointment = api.post(
        "/api/v1/appointments",
        {"patient_id": patient["id"], "external_id": "A-77", "starts_at": "2026-11-30T15:00:00Z"},
    )
    assert appointment.status_code == 201, appointment.content

    why = api.get(f"/api/v1/appointments/{appointment.json()['id']}/explain").json()
    planned = [d for d in why["planning"] if d["status"] == "planned"]
    assert planned and {d["kind"] for d in planned} == {"appt_reminder"}
    assert all(d["channel"] == "email" and d["to"] != "Rosa@example.org" for d in planned)
    assert any("appt_reminder" in line and "would send by email" in line for line in why["lines"])
