"""The machine lane: signed hooks skip the page middleware, keep the security headers."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import resolve

from carebell.core.vocab import OutboxStatus
from carebell.web.lane import is_machine_hook
from tests.lane import skipped_the_page_middleware
from tests.webhooks.test_hooks import SID, post_status, sent, status_of, twilio_settings  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_signed_callback_is_answered_without_the_page_middleware(client, sent):  # noqa: F811
    message, attempt = sent
    response = post_status(client, attempt.id, "delivered")
    assert response.status_code == 200 and status_of(message) == OutboxStatus.DELIVERED
    assert skipped_the_page_middleware(response) and not response.cookies


def test_a_hooks_answer_carries_the_pages_security_headers(client, sent):  # noqa: F811
    _message, attempt = sent
    page = client.get("/no/such/page")
    for response in (post_status(client, attempt.id, "sent"), post_status(client, 0, "x")):
        for header in ("Content-Security-Policy", "X-Frame-Options", "Permissions-Policy"):
            assert response[header] == page[header]
        assert response["X-Content-Type-Options"] == "nosniff"


def test_a_hooks_error_answer_carries_the_same_headers_and_no_traceback(
    sent,  # noqa: F811
    monkeypatch,
    settings,
):
    _message, attempt = sent
    settings.ALLOWED_HOSTS = ["testserver"]

    def broken(*args, **kwargs):
        raise RuntimeError("the provider registry is broken")

    monkeypatch.setattr("carebell.webhooks.views.provider_for", broken)
    client = Client(raise_request_exception=False)
    page = client.get("/no/such/page")
    failed = post_status(client, attempt.id, "sent")
    refused = client.post(f"/hooks/twilio/status/{attempt.id}", HTTP_HOST="evil.example")
    assert (failed.status_code, refused.status_code) == (500, 400)
    for response in (failed, refused):
        for header in ("Content-Security-Policy", "X-Frame-Options", "Permissions-Policy"):
            assert response[header] == page[header]
        assert b"RuntimeError" not in response.content and b"Traceback" not in response.content


def test_a_forged_callback_is_still_refused_in_the_lane(client, sent):  # noqa: F811
    message, attempt = sent
    assert post_status(client, attempt.id, "delivered", signature="bm90IGl0").status_code == 403
    assert status_of(message) == OutboxStatus.SENT


def test_a_hook_called_at_a_host_not_allowed_is_refused_400(client, sent, settings):  # noqa: F811
    message, attempt = sent
    settings.ALLOWED_HOSTS = ["carebell.example.org"]
    response = client.post(f"/hooks/twilio/status/{attempt.id}", HTTP_HOST="evil.example")
    assert response.status_code == 400 and status_of(message) == OutboxStatus.SENT


def test_a_path_under_hooks_that_is_no_marked_hook_takes_the_whole_stack(client):
    response = client.post("/hooks/twilio/no-such-hook", {"a": "b"})
    assert response.status_code == 404 and hasattr(response.wsgi_request, "user")


def test_pages_still_take_the_whole_stack(client):
    assert hasattr(client.get("/").wsgi_request, "session")


@pytest.mark.parametrize(
    "path",
    ["/hooks/twilio/status/1", "/hooks/twilio/inbound", "/hooks/twilio/voice/1",
     "/hooks/twilio/gather/1"],
)  # fmt: skip
def test_the_twilio_hooks_are_marked_for_the_lane(path):
    assert is_machine_hook(resolve(path).func)
