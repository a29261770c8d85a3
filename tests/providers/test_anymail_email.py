from __future__ import annotations

import asyncio
import base64

import pytest
from anymail.signals import AnymailTrackingEvent
from django.core import mail

from carebell.providers.anymail_email import AnymailEmailProvider, tracking_view
from carebell.providers.base import OutgoingMessage
from tests.providers.conftest import RecordingServer


def message(attempt_id: int = 21, to: str = "ana@example.org", **overrides) -> OutgoingMessage:
    fields = dict(
        attempt_id=attempt_id,
        channel="email",
        to=to,
        sender="reminders@oak.example",
        subject="Your prescription is ready",
        body="Your order is ready for pickup.",
        html="<p>Your order is ready for pickup.</p>",
        headers={"unsubscribe_url": "https://carebell.example/u/tok"},
        site_id=4,
        kind="rx_ready",
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


def test_it_hands_anymail_the_text_html_headers_and_attempt_metadata(settings):
    settings.ANYMAIL_ESP = "test"
    mail.outbox = []
    (result,) = asyncio.run(AnymailEmailProvider().send_batch(None, [message()]))
    params = mail.outbox[-1].anymail_test_params
    assert params["from"].addr_spec == "reminders@oak.example"
    assert [e.addr_spec for e in params["to"]] == ["ana@example.org"]
    assert params["subject"] == "Your prescription is ready"
    assert params["text_body"] == "Your order is ready for pickup."
    assert params["html_body"] == "<p>Your order is ready for pickup.</p>"
    assert params["extra_headers"]["List-Unsubscribe"] == "<https://carebell.example/u/tok>"
    assert params["extra_headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert params["metadata"] == {"attempt_id": "21", "site_id": "4"}
    assert params["tags"] == ["rx_ready"]
    assert (result.accepted, result.status, result.provider_message_id) == (True, "sent", "0")


def postmark(settings, server_url: str) -> AnymailEmailProvider:
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "pm-token", "POSTMARK_API_URL": server_url}
    return AnymailEmailProvider(esp="postmark")


def send_to_fake_postmark(settings, reply, *messages):
    async def go():
        async with RecordingServer(reply) as server:
            results = await postmark(settings, server.url).send_batch(None, list(messages))
            return server.requests, results

    return asyncio.run(go())


def ok(request):
    return 200, {"To": "ana@example.org", "MessageID": "pm-1", "ErrorCode": 0, "Message": "OK"}, {}


def test_it_posts_to_the_service_api_and_keeps_its_message_id(settings):
    (request,), (result,) = send_to_fake_postmark(settings, ok, message())
    assert request.path == "/email"
    assert request.headers["X-Postmark-Server-Token"] == "pm-token"
    assert (result.accepted, result.provider_message_id) == (True, "pm-1")


def test_an_inactive_recipient_at_the_service_is_a_permanent_rejection(settings):
    def inactive(_request):
        text = (
            "You tried to send to a recipient that has been marked as inactive.\n"
            "Found inactive addresses: ana@example.org.\n"
            "Inactive recipients are ones that have generated a hard bounce or a spam complaint."
        )
        return 422, {"ErrorCode": 406, "Message": text}, {}

    _, (result,) = send_to_fake_postmark(settings, inactive, message())
    assert (result.accepted, result.permanent, result.error_code) == (False, True, "rejected")


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [(429, {"Retry-After": "30"}, False, 30.0), (503, {}, False, None), (401, {}, True, None)],
)
def test_service_errors_are_classified_by_http_status(
    settings, status, headers, permanent, retry_after
):
    reply = (status, {"ErrorCode": 10, "Message": "no"}, headers)
    _, (result,) = send_to_fake_postmark(settings, lambda _r: reply, message())
    assert (result.accepted, result.permanent, result.retry_after) == (
        False,
        permanent,
        retry_after,
    )
    assert result.error_code == f"http_{status}"


def event(event_type: str, **fields) -> AnymailTrackingEvent:
    fields.setdefault("message_id", "pm-1")
    fields.setdefault("metadata", {"attempt_id": "21"})
    return AnymailTrackingEvent(
        event_type=event_type, event_id=fields.pop("event_id", None), **fields
    )


@pytest.mark.parametrize(
    ("event_type", "reject_reason", "expected"),
    [
        ("queued", None, None),
        ("deferred", None, None),
        ("sent", None, ("sent", False, False)),
        ("delivered", None, ("delivered", False, False)),
        ("opened", None, ("delivered", False, False)),
        ("bounced", "bounced", ("undelivered", True, False)),
        ("rejected", "invalid", ("failed", True, False)),
        ("rejected", "unsubscribed", ("failed", True, True)),
        ("failed", "other", ("failed", True, False)),
        ("complained", None, ("delivered", False, True)),
        ("unsubscribed", None, ("delivered", False, True)),
        ("unknown", None, None),
    ],
)
def test_it_normalises_anymail_tracking_events(settings, event_type, reject_reason, expected):
    settings.ANYMAIL_ESP = "postmark"
    update = AnymailEmailProvider().parse_status(event(event_type, reject_reason=reject_reason))
    if expected is None:
        assert update is None
        return
    assert (update.status, update.permanent, update.opt_out) == expected
    assert (update.attempt_id, update.provider_message_id) == (21, "pm-1")
    assert update.event_id == f"pm-1:{event_type}"


def test_the_service_event_id_is_used_for_deduplication_when_given(settings):
    settings.ANYMAIL_ESP = "postmark"
    update = AnymailEmailProvider().parse_status(event("delivered", event_id="evt-9"))
    assert update.event_id == "evt-9"


def auth(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def test_webhooks_must_carry_the_shared_basic_auth_secret(settings):
    settings.ANYMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    provider = AnymailEmailProvider()
    assert provider.verify_signature("https://c/hooks/email", {}, auth("hook:s3cret"))
    assert not provider.verify_signature("https://c/hooks/email", {}, auth("hook:wrong"))
    assert not provider.verify_signature("https://c/hooks/email", {}, {})
    settings.ANYMAIL = {}
    assert not provider.verify_signature("https://c/hooks/email", {}, auth("hook:s3cret"))


@pytest.mark.parametrize(
    ("esp", "view"),
    [("postmark", "PostmarkTrackingWebhookView"), ("mailgun", "MailgunTrackingWebhookView")],
)
def test_it_names_anymails_tracking_view_for_the_service(esp, view):
    assert tracking_view(esp).__name__ == view
