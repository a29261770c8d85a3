"""No server-side request forgery: loopback, private and link-local addresses are
refused when an endpoint is saved and again when the worker sends, unless
CAREBELL_WEBHOOKS_ALLOW_PRIVATE allows them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from carebell import events
from carebell.outbound import endpoints, targets
from carebell.outbound.models import EventDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_dns(monkeypatch):
    """Names resolve as a test says (the one seam: targets.resolve)."""
    table = {"hooks.example.org": ["93.184.216.34"]}
    monkeypatch.setattr(targets, "resolve", lambda host, port: table[host])
    return table


def create(site, url):
    return endpoints.create_endpoint(site, url=url, event_types=["message.failed"], by=None)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://[::1]/hooks", "loopback"),
        ("https://10.0.0.8/hooks", "private"),
        ("https://192.168.0.2:8443/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://localhost/hooks", "loopback"),
    ],
)
def test_it_refuses_addresses_that_are_not_public(site, url, words):
    with pytest.raises(ValidationError) as raised:
        create(site, url)
    assert words in raised.value.messages[0]
    assert "public addresses" in raised.value.messages[0]
    assert not WebhookEndpoint.objects.exists()


def test_it_refuses_a_name_that_resolves_to_a_private_address(site, public_dns):
    public_dns["internal.example.org"] = ["93.184.216.34", "10.1.1.1"]
    with pytest.raises(ValidationError, match="private address"):
        create(site, "https://internal.example.org/hooks")


def test_it_accepts_a_public_https_endpoint(site, public_dns):
    endpoint, secret = create(site, "https://hooks.example.org/carebell")
    assert endpoint.url == "https://hooks.example.org/carebell"
    assert secret.startswith("whsec_") and endpoint.enabled


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "Enter the endpoint's URL"),
        ("not a url", "full URL"),
        ("ftp://hooks.example.org/", "full URL"),
        ("http://hooks.example.org/", "must start with https://"),
        ("https://user:secret@hooks.example.org/", "no user name or password"),
        ("https://hooks.example.org/" + "a" * 500, "too long"),
        ("https://nowhere.invalid/", "does not resolve"),
    ],
)
def test_bad_urls_get_a_clear_error(site, public_dns, monkeypatch, url, words):
    def resolve(host, port):
        if host == "nowhere.invalid":
            raise OSError("no such name")
        return public_dns[host]

    monkeypatch.setattr(targets, "resolve", resolve)
    with pytest.raises(ValidationError) as raised:
        create(site, url)
    assert words in raised.value.messages[0]


def test_the_setting_allows_loopback_and_plain_http(site, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint, _ = create(site, "http://127.0.0.1:9000/hooks")
    assert endpoint.pk


def test_unknown_or_no_event_types_are_refused(site, public_dns):
    with pytest.raises(ValidationError, match="Unknown event type"):
        endpoints.create_endpoint(
            site, url="https://hooks.example.org/", event_types=["patient.name"], by=None
        )
    with pytest.raises(ValidationError, match="at least one"):
        endpoints.create_endpoint(site, url="https://hooks.example.org/", event_types=[], by=None)


def test_an_update_to_a_private_address_changes_nothing(site, public_dns):
    endpoint, _ = create(site, "https://hooks.example.org/")
    with pytest.raises(ValidationError):
        endpoints.update_endpoint(endpoint, url="https://10.0.0.1/", by=None)
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.org/"


def deliver_once(site, settings, url):
    """Save an endpoint while allowed, forbid, and let the worker try it."""
    from carebell.outbound.delivery import EventDeliverer

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoints.create_endpoint(site, url=url, event_types=["message.failed"], by=None)
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    events.emit(site, "message.failed", {"message": {"id": 1}}, timezone.now())
    worker = EventDeliverer(timeout_seconds=2.0)
    try:
        worker.process_batch()
    finally:
        worker.close()
    return EventDelivery.objects.get()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("{base}", "127.0.0.1 is a loopback address"),
        ("http://[::1]:{port}/hooks", "::1 is a loopback address"),
        ("http://10.255.255.1:{port}/", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://localhost:{port}/hooks", "localhost resolves to a loopback address"),
    ],
)
def test_the_worker_refuses_them_at_send_too(site, settings, receiver, url, words):
    port = receiver.server.server_address[1]
    row = deliver_once(site, settings, url.format(base=receiver.url, port=port))
    assert words in row.last_error
    assert row.status == "pending" and row.last_status_code is None
    assert receiver.received == []  # nothing was sent


def test_with_the_setting_the_worker_calls_loopback(site, settings, receiver):
    from carebell.outbound.delivery import EventDeliverer

    row = deliver_once(site, settings, receiver.url.replace("127.0.0.1", "localhost"))
    assert (row.status, receiver.received) == ("pending", [])  # refused with the setting off
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    EventDelivery.objects.update(due_at=timezone.now())
    worker = EventDeliverer(timeout_seconds=2.0)
    try:
        worker.process_batch()
    finally:
        worker.close()
    assert EventDelivery.objects.get().status == "delivered"  # delivered with it on
    assert len(receiver.received) == 1
