"""Email through an email service (Postmark, SendGrid, Mailgun, Amazon SES, …) via
django-anymail's backends, and their delivery events in carebell's words.

Which service: settings.ANYMAIL_ESP, the module name of an anymail backend
(`postmark`, `sendgrid`, `mailgun`, `amazon_ses`, … or `test`). Credentials live in
settings.ANYMAIL as anymail documents them (https://anymail.dev/en/stable/esps/).

Webhooks: anymail's own tracking view for the service (`tracking_view()`) checks the
service's signature and the shared basic-auth secret, then sends anymail's
`tracking` signal; a receiver turns each event into a StatusUpdate with
`parse_status`. `verify_signature` checks the basic-auth secret alone, for views
that do not go through anymail.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import logging
from collections.abc import Mapping
from typing import Any

from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailRecipientsRefused,
    AnymailUnsupportedFeature,
)
from anymail.signals import AnymailTrackingEvent
from django.conf import settings
from django.core.exceptions import BadRequest, ImproperlyConfigured
from django.core.mail import get_connection
from django.utils.crypto import constant_time_compare

from carebell.core.vocab import Channel
from carebell.providers.base import (
    Limits,
    OutgoingMessage,
    ProviderError,
    SendResult,
    StatusUpdate,
    Unsupported,
    header,
    parse_retry_after,
)
from carebell.providers.email_common import ConnectionEmailProvider, build_email

log = logging.getLogger("carebell.providers.anymail")

# --- anymail's vocabulary → carebell's ---------------------------------------------

#: anymail EventType → (carebell status, permanent, opt_out); None = nothing to record.
#: https://anymail.dev/en/stable/sending/tracking/#anymail.signals.AnymailTrackingEvent.event_type
EVENT_STATUS: dict[str, tuple[str, bool, bool] | None] = {
    "queued": None,
    "deferred": None,  # the receiving server will be retried by the service
    "sent": ("sent", False, False),
    "delivered": ("delivered", False, False),
    "opened": ("delivered", False, False),
    "clicked": ("delivered", False, False),
    "autoresponded": ("delivered", False, False),
    "bounced": ("undelivered", True, False),
    "rejected": ("failed", True, False),
    "failed": ("failed", True, False),
    # A spam complaint or unsubscribe: the mail arrived, and the person wants no more.
    "complained": ("delivered", False, True),
    "unsubscribed": ("delivered", False, True),
}

#: anymail RejectReason values that mean the person asked not to get mail.
OPT_OUT_REASONS = frozenset({"spam", "unsubscribed"})

#: anymail per-recipient send status → SendResult status (None = not accepted).
RECIPIENT_STATUS = {"sent": "sent", "queued": "queued", "unknown": "queued"}


def classify_anymail(error: Exception) -> ProviderError:
    """The one place anymail failures are sorted into permanent and transient."""
    if isinstance(error, AnymailUnsupportedFeature):
        return Unsupported(str(error).split("\n")[0])
    if isinstance(error, AnymailRecipientsRefused):
        return ProviderError("recipient refused", permanent=True, code="rejected")
    status = getattr(error, "status_code", None)
    if isinstance(error, AnymailAPIError) and status is not None:
        response = getattr(error, "response", None)
        # (a requests.Response is falsy for 4xx/5xx, hence "is not None")
        headers = response.headers if response is not None else {}
        retry_after = parse_retry_after(headers.get("Retry-After"))
        transient = status in (408, 429) or status >= 500
        return ProviderError(
            f"HTTP {status}",
            permanent=not transient,
            code=f"http_{status}",
            retry_after=retry_after,
        )
    # No HTTP answer (connection refused, timeout) or a configuration problem.
    return ProviderError(type(error).__name__, permanent=False, code="network")


def backend_path(esp: str) -> str:
    return f"anymail.backends.{esp}.EmailBackend"


def tracking_view(esp: str = ""):
    """anymail's tracking-webhook view class for the service (route it, then connect
    a receiver to anymail.signals.tracking that calls `parse_status`), answering 400
    to a payload it cannot read."""
    esp = esp or configured_esp()
    module = importlib.import_module(f"anymail.webhooks.{esp}")
    for name, value in inspect.getmembers(module, inspect.isclass):
        if name.endswith(("TrackingWebhookView", "CombinedWebhookView")) and (
            value.__module__ == module.__name__
        ):
            return type(value.__name__, (RefusesUnreadablePayloads, value), {})
    raise Unsupported(f"tracking webhooks for {esp}")


class RefusesUnreadablePayloads:
    """Mixed into anymail's webhook views. anymail authenticates the request, then
    reads the service's JSON or form with no guard: a malformed payload raises
    whatever it trips on (JSONDecodeError, KeyError, TypeError, its own configuration
    error for an inbound payload), a server error the service would take as "try
    again later". What cannot be read is answered 400 and records nothing."""

    def parse_events(self, request):
        try:
            return super().parse_events(request)
        except Exception as error:  # whatever reading the payload tripped on
            log.warning(
                "hooks.unreadable_payload",
                extra={"ids": {"provider": "anymail", "error": type(error).__name__}},
            )
            raise BadRequest("unreadable webhook payload") from error


def configured_esp() -> str:
    esp = getattr(settings, "ANYMAIL_ESP", "")
    if not esp:
        raise ImproperlyConfigured("CAREBELL_ANYMAIL_ESP is required for the anymail provider")
    return esp


class AnymailEmailProvider(ConnectionEmailProvider):
    name = "anymail"
    limits = Limits(channels=frozenset({Channel.EMAIL}), max_body_chars=1_000_000)

    def __init__(self, esp: str = "") -> None:
        self.esp = esp or configured_esp()

    transport_errors = (AnymailError, OSError)

    def open_connection(self):
        # anymail's backends are synchronous (requests / boto3): one connection, and
        # so one HTTP keep-alive session, for the whole batch.
        connection = get_connection(backend_path(self.esp), fail_silently=False)
        connection.open()
        return connection

    def classify(self, error: Exception, connection) -> ProviderError:
        return classify_anymail(error)

    def send_sync(self, connection, message: OutgoingMessage) -> SendResult:
        email = build_email(message, connection)
        # Metadata comes back on every tracking event: the attempt it belongs to.
        email.metadata = {"attempt_id": str(message.attempt_id), "site_id": str(message.site_id)}
        if message.kind:
            email.tags = [message.kind]
        email.send()
        status = email.anymail_status
        recipient = status.recipients.get(message.to.lower()) or status.recipients.get(message.to)
        word = RECIPIENT_STATUS.get(recipient.status if recipient else "unknown")
        if word is None:
            raise ProviderError(f"recipient {recipient.status}", permanent=True, code="rejected")
        ids = {"provider": self.name, "attempt_id": message.attempt_id, "site_id": message.site_id}
        log.debug("provider.accepted", extra={"ids": ids})
        message_id = "" if status.message_id is None else str(status.message_id)
        return SendResult(message.attempt_id, True, message_id, word)

    def parse_status(self, data: Any, attempt_id: int | None = None) -> StatusUpdate | None:
        """An AnymailTrackingEvent as a StatusUpdate (None for events carebell
        does not record, such as queued or deferred). Anything else — a form posted
        to carebell's own status hook — is not how the service reports: Unsupported."""
        if not isinstance(data, AnymailTrackingEvent):
            raise Unsupported("anymail status reports outside its tracking webhook")
        return status_from_event(data, attempt_id)

    def verify_signature(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        return basic_auth_matches(header(headers, "Authorization"), webhook_secrets())


def status_from_event(event: Any, attempt_id: int | None = None) -> StatusUpdate | None:
    mapped = EVENT_STATUS.get(event.event_type)
    message_id = str(event.message_id or "")
    if mapped is None or not message_id:
        return None
    status, permanent, opt_out = mapped
    reason = str(event.reject_reason or "")
    # Metadata comes back as the service stores it: a forged event may carry anything.
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    given = str(metadata.get("attempt_id", ""))
    if attempt_id is None and given.isascii() and given.isdigit():
        attempt_id = int(given)
    return StatusUpdate(
        provider_message_id=message_id,
        status=status,
        attempt_id=attempt_id,
        error_code=reason,
        permanent=permanent,
        opt_out=opt_out or reason in OPT_OUT_REASONS,
        event_id=str(event.event_id or f"{message_id}:{event.event_type}"),
        provider_status=event.event_type,
    )


def webhook_secrets() -> list[str]:
    """anymail's WEBHOOK_SECRET ('user:password', or a list while rotating)."""
    secret = getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET")
    if not secret:
        return []
    return [secret] if isinstance(secret, str) else list(secret)


def basic_auth_matches(authorization: str, secrets: list[str]) -> bool:
    """True when an HTTP Basic Authorization header carries one of `secrets`."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not secrets:
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return any(constant_time_compare(given, secret) for secret in secrets)
