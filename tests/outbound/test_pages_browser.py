"""The webhook pages in Chromium: add an endpoint, copy its secret, read the
delivery log after a failed and a resent delivery — nothing refused by the CSP.
Screens are saved under var/screenshots/ for a person to look at."""

from __future__ import annotations

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from carebell import events
from carebell.outbound.delivery import EventDeliverer
from carebell.outbound.models import WebhookEndpoint
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories
from tests.browser import RECORD_VIOLATIONS, shoot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_administrator_adds_an_endpoint_and_reads_its_log(
    page,
    live_server,
    site,
    receiver,
    settings,
):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1200, "height": 900})
    sign_in(page, f"{live_server.url}/staff/webhooks/", "dana")
    page.wait_for_selector("text=Add an endpoint")
    shoot(page, "staff-webhooks-empty")
    page.click("text=Add an endpoint")
    page.fill("#id_url", receiver.url)
    page.fill("#id_description", "Practice management system")
    page.check("input[value='appointment.confirmed']")
    page.check("input[value='message.failed']")
    page.click("main button[type=submit]")
    secret = page.inner_text("#secret")
    shoot(page, "staff-webhook-secret")
    endpoint = WebhookEndpoint.objects.get()
    assert secret == endpoint.secret

    receiver.answer(503)
    events.emit(site, "appointment.confirmed", {"appointment": {"id": 3}}, timezone.now())
    worker = EventDeliverer(timeout_seconds=2.0)
    try:
        worker.process_batch()
        page.reload()
        page.wait_for_selector("text=HTTP 503")
        page.click("button:has-text('Resend')")
        page.wait_for_selector("text=will be sent again")
        worker.process_batch()
    finally:
        worker.close()
    page.reload()
    page.wait_for_selector("text=HTTP 204")
    shoot(page, "staff-webhook-log")
    assert page.evaluate("window.__violations") == []
    headers, body = receiver.received[-1]
    assert Webhook(secret).verify(body, headers)["type"] == "appointment.confirmed"
