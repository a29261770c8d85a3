"""Done when (issue 13): an integrator, with only the README and the OpenAPI document,
creates a token, adds a patient with a contact and an appointment through /api/v1,
sees the planned reminders through explain, and receives a signed
`appointment.confirmed` event at their endpoint after the patient replies C on the
simulated phone.

Everything real on loopback: the API through Django's test client, the dispatcher
sending to the simulated phone (its own server in a thread), the phone posting the
patient's reply to carebell's live server, and the events worker posting to the
integrator's receiver — verified with the `standardwebhooks` reference library."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request

import pytest
import time_machine
from django.db import connection
from django.test import Client
from standardwebhooks import Webhook

from carebell.dispatch.dispatcher import Dispatcher
from carebell.messaging.models import AutomatedMessage, OutboxMessage
from carebell.outbound.delivery import EventDeliverer
from carebell.planning.rules_defaults import default_rules
from carebell.simulator.providers import sim_token
from carebell.simulator.server import SimConfig, start_in_thread
from carebell.sites.roles import FRONT_DESK, SYSTEM_ADMINISTRATOR
from tests import factories
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+12025550142"


@pytest.fixture
def phone(live_server, settings):
    """The simulated phone, answering to carebell's live server."""
    sim = start_in_thread(
        SimConfig(
            port=0,
            auth_token=sim_token(),
            inbound_url=f"{live_server.url}/hooks/sim/inbound",
            callbacks=False,  # delivery reports are not this story's
        )
    )
    settings.BASE_URL, settings.SMS_PROVIDER, settings.SIM_URL = live_server.url, "sim", sim.url
    yield sim
    sim.stop()


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def reply(sim, body: str) -> dict:
    request = urllib.request.Request(
        f"{sim.url}/sim/api/reply",
        data=json.dumps({"from": PHONE, "body": body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.load(answer)


def test_an_integrator_hears_the_patients_confirmation(site, phone, receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the integrator's receiver is on loopback
    AutomatedMessage.objects.bulk_create(default_rules(site))
    AutomatedMessage.objects.filter(
        site=site, kind__in=["appt_confirmation", "appt_reminder"]
    ).update(enabled=True)

    # The practice's administrator adds the integrator's endpoint and hands over its
    # secret; a staff member creates the integrator's API token.
    admin = signed_in(factories.make_staff(site, SYSTEM_ADMINISTRATOR))
    added = admin.post(
        "/staff/webhooks/new/",
        {"url": receiver.url, "event_types": ["appointment.confirmed"], "enabled": "on"},
        follow=True,
    )
    endpoint_secret = re.search(r'id="secret">(whsec_[^<]+)<', added.content.decode()).group(1)
    tokens_page = signed_in(factories.make_staff(site, FRONT_DESK)).post(
        "/staff/account/api-tokens/", {"name": "practice system", "expires": "90"}
    )
    token = re.search(r'id="new-token">(cb_[^<]+)<', tokens_page.content.decode()).group(1)

    # The integrator: a patient, a contact with a mobile number, an appointment.
    api = ApiClient(token)
    assert "/api/v1/appointments" in api.get("/api/v1/openapi.json").json()["paths"]
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
    point = api.post(f"/api/v1/contacts/{contact['id']}/points", {"kind": "mobile", "value": PHONE})
    assert point.status_code == 201, point.content
    preference = api.client.put(
        f"/api/v1/contacts/{contact['id']}/preferences/reminders",
        '{"value": "sms"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert preference.status_code == 200, preference.content
    appointment = api.post(
        "/api/v1/appointments",
        {"patient_id": patient["id"], "external_id": "A-77", "starts_at": "2026-11-30T15:00:00Z"},
    )
    assert appointment.status_code == 201, appointment.content
    appointment = appointment.json()

    # … sees what carebell planned, and why.
    why = api.get(f"/api/v1/appointments/{appointment['id']}/explain").json()
    planned = {(d["kind"], d["channel"]) for d in why["planning"] if d["status"] == "planned"}
    assert planned == {("appt_confirmation", "sms"), ("appt_reminder", "sms")}, why

    # When the confirmation request is due, it goes to the simulated phone; the
    # patient answers C there.
    request = OutboxMessage.objects.get(kind="appt_confirmation")
    with time_machine.travel(request.due_at + dt.timedelta(seconds=1), tick=True):
        dispatcher = Dispatcher()
        try:
            assert dispatcher.process_batch()
        finally:
            dispatcher.close()
        request.refresh_from_db()
        assert request.status == "sent"
        assert reply(phone, "C")["webhook_status"] == 200
        connection.close()  # the live server wrote; read afresh

        worker = EventDeliverer(timeout_seconds=5.0)
        try:
            assert worker.process_batch()
        finally:
            worker.close()

        # The integrator's receiver got one signed event, which their library checks.
        [(headers, body)] = receiver.received
        event = Webhook(endpoint_secret).verify(body, headers)
    assert event["type"] == "appointment.confirmed"
    assert event["data"]["appointment"] == {
        "id": appointment["id"],
        "source": appointment.get("source", "carebell"),
        "external_id": "A-77",
    }
    assert event["data"]["patient"] == {"id": patient["id"]}
    assert PHONE not in body.decode() and "Rosa" not in body.decode()
    assert api.get(f"/api/v1/appointments/{appointment['id']}").json()["status"] == "confirmed"
