"""The staff app's webhook pages: manage_integrations only, the site's own endpoints
only (another site's answer 404), bad input answered with clear errors, the secret
shown once, the delivery log with its resend button."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carebell import events
from carebell.audit.models import AuditEvent
from carebell.outbound import endpoints
from carebell.outbound.delivery import EventDeliverer
from carebell.outbound.models import EventDelivery, WebhookEndpoint
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories

pytestmark = pytest.mark.django_db

NEW = "/staff/webhooks/new/"


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True


def add(site, url="http://127.0.0.1:9/hooks", types=("appointment.confirmed",)):
    return endpoints.create_endpoint(site, url=url, event_types=list(types), by=None)[0]


def test_an_administrator_adds_an_endpoint_and_sees_its_secret_once(admin_client_, site):
    response = admin_client_.post(
        NEW,
        {"url": "http://127.0.0.1:9/hooks", "description": "PMS", "enabled": "on",
         "event_types": ["appointment.confirmed", "contact.opted_out"]},
    )  # fmt: skip
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302 and response.url == f"/staff/webhooks/{endpoint.pk}/"
    assert endpoint.site == site and endpoint.event_types == [
        "appointment.confirmed",
        "contact.opted_out",
    ]
    page = admin_client_.get(response.url).content.decode()
    assert endpoint.secret in page
    again = admin_client_.get(response.url).content.decode()
    assert endpoint.secret not in again  # shown once
    assert AuditEvent.objects.filter(action="create", object_type="outbound.webhookendpoint")


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"url": "nonsense", "event_types": ["message.failed"]}, "full URL"),
        ({"url": "", "event_types": ["message.failed"]}, "This field is required"),
        ({"url": "http://127.0.0.1/" + "a" * 600, "event_types": ["message.failed"]},
         "at most 500 characters"),
        ({"url": "http://127.0.0.1/", "event_types": []}, "Choose at least one event"),
        ({"url": "http://127.0.0.1/", "event_types": ["patient.everything"]}, "not one of"),
        ({"url": "http://127.0.0.1/", "event_types": ["message.failed"], "description": "d" * 201},
         "at most 200 characters"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_and_saves_nothing(admin_client_, form, words):
    response = admin_client_.post(NEW, form)
    assert response.status_code == 200
    assert words in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_private_address_is_refused_without_the_setting(admin_client_, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = admin_client_.post(
        NEW, {"url": "https://169.254.169.254/latest/", "event_types": ["message.failed"]}
    )
    assert "link-local address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_plain_http_is_refused_without_the_setting(admin_client_, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = admin_client_.post(
        NEW, {"url": "http://127.0.0.1/", "event_types": ["message.failed"]}
    )
    assert "must start with https://" in response.content.decode()


def test_editing_changes_what_was_changed(admin_client_, site):
    endpoint = add(site)
    response = admin_client_.post(
        f"/staff/webhooks/{endpoint.pk}/",
        {"url": endpoint.url, "event_types": ["message.failed"], "description": ""},
    )
    endpoint.refresh_from_db()
    assert response.status_code == 302
    assert (endpoint.event_types, endpoint.enabled) == (["message.failed"], False)


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_signing(admin_client_, site):
    endpoint = add(site)
    old = endpoint.secret
    response = admin_client_.post(f"/staff/webhooks/{endpoint.pk}/rotate/")
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == old and endpoint.secret != old
    page = admin_client_.get(response.url).content.decode()
    assert endpoint.secret in page and old not in page
    assert "previous secret also signs until" in page


def test_the_delivery_log_lists_attempts_and_resends(admin_client_, site, receiver):
    endpoint = add(site, url=receiver.url)
    receiver.answer(503)
    events.emit(site, "appointment.confirmed", {"appointment": {"id": 3}}, timezone.now())
    worker = EventDeliverer(timeout_seconds=2.0)
    try:
        worker.process_batch()
        page = admin_client_.get(f"/staff/webhooks/{endpoint.pk}/").content.decode()
        delivery = EventDelivery.objects.get()
        assert "HTTP 503" in page and delivery.message_id in page and "next try" in page
        response = admin_client_.post(
            f"/staff/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/"
        )
        assert response.status_code == 302
        worker.process_batch()
    finally:
        worker.close()
    assert EventDelivery.objects.get().status == "delivered"
    assert "HTTP 204" in admin_client_.get(f"/staff/webhooks/{endpoint.pk}/").content.decode()
    assert AuditEvent.objects.filter(action="resend").count() == 1


def test_the_header_links_webhooks_for_administrators_only(admin_client_, staff_of):
    assert 'href="/staff/webhooks/"' in admin_client_.get("/staff/").content.decode()
    assert 'href="/staff/webhooks/"' not in staff_of(FRONT_DESK).get("/staff/").content.decode()


@pytest.mark.parametrize("role", [FRONT_DESK, READ_ONLY])
def test_staff_without_manage_integrations_are_refused(staff_of, site, role):
    endpoint = add(site)
    client = staff_of(role)
    for url in ("/staff/webhooks/", NEW, f"/staff/webhooks/{endpoint.pk}/"):
        assert client.get(url).status_code == 403
    assert client.post(f"/staff/webhooks/{endpoint.pk}/rotate/").status_code == 403
    assert WebhookEndpoint.objects.get().secret == endpoint.secret


def test_another_organizations_endpoints_and_deliveries_answer_404(outsider, site, receiver):
    endpoint = add(site, url=receiver.url)
    events.emit(site, "appointment.confirmed", {"appointment": {"id": 3}}, timezone.now())
    from carebell.outbound.delivery import fan_out

    fan_out(timezone.now())
    delivery = EventDelivery.objects.get()
    base = f"/staff/webhooks/{endpoint.pk}"
    assert outsider.get(f"{base}/").status_code == 404
    assert outsider.post(f"{base}/", {"url": "http://127.0.0.1/x"}).status_code == 404
    assert outsider.post(f"{base}/rotate/").status_code == 404
    assert outsider.post(f"{base}/deliveries/{delivery.pk}/resend/").status_code == 404
    assert endpoint.url not in outsider.get("/staff/webhooks/").content.decode()
    assert WebhookEndpoint.objects.get().secret == endpoint.secret


def test_another_sites_endpoint_of_the_same_organization_answers_404(staff_of, site, org):
    from carebell.sites.roles import SYSTEM_ADMINISTRATOR

    other = factories.make_site(org, name="Maple Uptown")
    theirs = add(other)
    client = staff_of(SYSTEM_ADMINISTRATOR)  # an administrator of `site` only
    assert client.get(f"/staff/webhooks/{theirs.pk}/").status_code == 404


def test_a_delivery_of_another_endpoint_answers_404(admin_client_, site, receiver):
    mine, other = add(site, url=receiver.url), add(site, url=receiver.url)
    events.emit(site, "appointment.confirmed", {"appointment": {"id": 3}}, timezone.now())
    from carebell.outbound.delivery import fan_out

    fan_out(timezone.now())
    theirs = EventDelivery.objects.get(endpoint=other)
    url = f"/staff/webhooks/{mine.pk}/deliveries/{theirs.pk}/resend/"
    assert admin_client_.post(url).status_code == 404


def test_a_bad_page_link_is_reported(admin_client_, site):
    endpoint = add(site)
    page = admin_client_.get(f"/staff/webhooks/{endpoint.pk}/?after=garbage").content.decode()
    assert "That page link is not valid" in page
