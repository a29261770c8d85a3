"""Provider webhooks: delivery reports. Thin: verify, parse, hand to the writer.

Every hook answers 4xx to what it cannot use, never 5xx: an unknown provider, or
one not configured here, is 404; a forged request is refused with 403 before
anything is written; fields no table can hold (NUL characters, ids longer than any
provider's) are 400. A report for an id carebell does not know is answered 200 (so
the provider stops retrying) and changes nothing; a replayed report changes nothing
(de-duplicated by message id and status in `outbox.record_status`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
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

from carebell import outbox
from carebell.providers.base import Provider, StatusUpdate, Unsupported
from carebell.providers.registry import BY_NAME, provider_by_name
from carebell.providers.twilio.sms import parse_inbound
from carebell.twoway import inbound
from carebell.web.lane import machine_hook

log = logging.getLogger("carebell.hooks")

#: Longest provider message id and address carebell stores (the columns' lengths).
MAX_MESSAGE_ID = 100
MAX_ADDRESS = 254
#: The providers that deliver inbound texts to /hooks/<provider>/inbound.
INBOUND_PROVIDERS = ("twilio", "sim")


def called_url(request: HttpRequest) -> str:
    """The URL as the provider called it: carebell's public base URL plus the path
    (behind a proxy, the request's own host and scheme may differ from what the
    provider signed)."""
    return settings.BASE_URL + request.get_full_path()


def provider_for(name: str) -> Provider | None:
    """The provider a hook URL names, or None: an unknown name, or a provider that is
    not configured here (the email service's, without one), has no hooks.

    Built once per name and kept until a setting changes (a provider holds nothing
    but what it reads from settings): building Twilio's on every callback cost it
    about as much CPU as checking the signature."""
    found = _PROVIDERS.get(name)
    if found is None:
        try:
            found = provider_by_name(name)
        except ImproperlyConfigured:
            return None
        if found is not None and name in BY_NAME:
            _PROVIDERS[name] = found
    return found


#: The providers the hooks have built, by name (`provider_for`).
_PROVIDERS: dict[str, Provider] = {}


@receiver(setting_changed)
def _forget_providers(**kwargs) -> None:
    # A token, a sender or the simulator switched on or off (tests override them).
    _PROVIDERS.clear()


def refusal(provider: Provider, name: str, request: HttpRequest) -> HttpResponse | None:
    """The answer to a request `provider` did not sign (403) or whose fields no table
    can hold (400); None for a request to act on."""
    try:
        genuine = provider.verify_signature(called_url(request), request.POST, request.headers)
    except Unsupported:  # a provider that never calls back (SMTP, the console)
        genuine = False
    if not genuine:
        log.warning("hooks.bad_signature", extra={"ids": {"provider": name}})
        return HttpResponseForbidden("invalid signature")
    if _has_nul(request.POST):
        return HttpResponseBadRequest("a field holds a NUL character")
    return None


def _has_nul(form) -> bool:
    # PostgreSQL stores no NUL character in text, and no real report carries one.
    return any("\x00" in name or "\x00" in "".join(values) for name, values in form.lists())


def is_storable(update: StatusUpdate) -> bool:
    """True when the report's message id and error code fit carebell's columns."""
    return 0 < len(update.provider_message_id) <= MAX_MESSAGE_ID and "\x00" not in (
        update.provider_message_id + update.error_code
    )


@machine_hook
@csrf_exempt
@require_POST
def status_callback(request: HttpRequest, provider: str, attempt_id: int) -> HttpResponse:
    handler = provider_for(provider)
    if handler is None:
        return HttpResponseNotFound("unknown provider")
    if (refused := refusal(handler, provider, request)) is not None:
        return refused
    try:
        update = handler.parse_status(request.POST, attempt_id)
    except Unsupported:  # its reports arrive elsewhere (the email service's webhook)
        return HttpResponseNotFound("no status reports here")
    if update is None:
        return HttpResponse(status=200)
    if not is_storable(update):
        return HttpResponseBadRequest("not a status report carebell can store")
    record_update(provider, update, attempt_id)
    return HttpResponse(status=200)


def record_update(provider: str, update: StatusUpdate, attempt_id: int | None) -> None:
    outbox.record_status(
        provider,
        update.provider_message_id,
        update.status,
        now=timezone.now(),
        attempt_id=attempt_id,
        error_code=update.error_code[:32],
        opt_out=update.opt_out,
    )


#: Twilio waits for TwiML in answer to an inbound text; an empty response sends
#: nothing back (carebell's replies go through the outbox and its checks).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@machine_hook
@csrf_exempt
@require_POST
def inbound_sms(request: HttpRequest, provider: str) -> HttpResponse:
    handler = provider_for(provider) if provider in INBOUND_PROVIDERS else None
    if handler is None:
        return HttpResponseNotFound("unknown provider")
    if (refused := refusal(handler, provider, request)) is not None:
        return refused
    parsed = parse_inbound(request.POST)
    if not parsed.message_sid or not parsed.from_number:
        return HttpResponseBadRequest("not an inbound message: MessageSid and From are required")
    if (
        len(parsed.message_sid) > MAX_MESSAGE_ID
        or max(len(parsed.from_number), len(parsed.to_number)) > MAX_ADDRESS
    ):
        return HttpResponseBadRequest("not an inbound message: MessageSid, From or To too long")
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
    if update is None or not is_storable(update):
        return
    record_update("anymail", update, update.attempt_id)


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
