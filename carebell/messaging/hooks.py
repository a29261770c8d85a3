"""Provider webhooks: delivery reports. Thin: verify, parse, hand to the writer.

A forged request is refused with 403 before anything is written; a report for an
id carebell does not know is answered 200 (so the provider stops retrying) and
changes nothing; a replayed report changes nothing (de-duplicated by message id
and status in `actions.record_status`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
)
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from carebell.messaging import actions, inbound
from carebell.providers.base import Unsupported
from carebell.providers.registry import provider_by_name
from carebell.providers.twilio_sms import parse_inbound

log = logging.getLogger("carebell.hooks")


def called_url(request: HttpRequest) -> str:
    """The URL as the provider called it: carebell's public base URL plus the path
    (behind a proxy, the request's own host and scheme may differ from what the
    provider signed)."""
    return settings.BASE_URL + request.get_full_path()


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest, provider: str, attempt_id: int) -> HttpResponse:
    handler = provider_by_name(provider)
    if handler is None:
        return HttpResponseNotFound("unknown provider")
    try:
        genuine = handler.verify_signature(called_url(request), request.POST, request.headers)
    except Unsupported:
        genuine = False
    if not genuine:
        log.warning("hooks.bad_signature", extra={"ids": {"provider": provider}})
        return HttpResponseForbidden("invalid signature")
    update = handler.parse_status(request.POST, attempt_id)
    if update is not None:
        actions.record_status(
            provider,
            update.provider_message_id,
            update.status,
            now=timezone.now(),
            attempt_id=attempt_id,
            error_code=update.error_code,
            opt_out=update.opt_out,
        )
    return HttpResponse(status=200)


#: Twilio waits for TwiML in answer to an inbound text; an empty response sends
#: nothing back (carebell's replies go through the outbox and its checks).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@csrf_exempt
@require_POST
def inbound_sms(request: HttpRequest, provider: str) -> HttpResponse:
    handler = provider_by_name(provider)
    if handler is None or provider not in ("twilio", "sim"):
        return HttpResponseNotFound("unknown provider")
    if not handler.verify_signature(called_url(request), request.POST, request.headers):
        log.warning("hooks.bad_signature", extra={"ids": {"provider": provider}})
        return HttpResponseForbidden("invalid signature")
    parsed = parse_inbound(request.POST)
    if not parsed.message_sid or not parsed.from_number:
        return HttpResponseBadRequest("not an inbound message: MessageSid and From are required")
    inbound.handle_inbound_sms(
        inbound.InboundSms(
            provider=provider,
            message_id=parsed.message_sid,
            from_number=parsed.from_number,
            to_number=parsed.to_number,
            body=parsed.body,
            raw=dict(request.POST.items()),
        ),
        now=timezone.now(),
    )
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


def email_event_received(sender, event, esp_name: str = "", **kwargs) -> None:
    """anymail's tracking signal: a delivery event from an email service, already
    authenticated by anymail's view (HTTP basic auth with the webhook secret)."""
    from carebell.providers.anymail_email import status_from_event

    update = status_from_event(event)
    if update is None:
        return
    actions.record_status(
        "anymail",
        update.provider_message_id,
        update.status,
        now=timezone.now(),
        attempt_id=update.attempt_id,
        error_code=update.error_code,
        opt_out=update.opt_out,
    )


def anymail_hook_patterns() -> list:
    """The email service's tracking webhook, mounted only when both the service and
    a webhook secret are configured: without a secret anymail would accept anyone."""
    from django.urls import path

    from carebell.providers.anymail_email import webhook_secrets

    esp = settings.ANYMAIL_ESP
    if not esp or not webhook_secrets():
        return []
    from carebell.providers.anymail_email import tracking_view

    view = tracking_view(esp).as_view()
    return [path(f"hooks/anymail/{esp}/tracking/", view, name="anymail-tracking")]
