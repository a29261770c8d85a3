"""Twilio Programmable Messaging over its REST API, with aiohttp.

aiohttp rather than the twilio SDK's HTTP client or httpx: measured on this
project's machine at ~0.4 ms CPU per request against httpx's ~3.7 ms
(../shared/MEASURED.md), which at 1,500 messages/s is the whole budget. The twilio
package is used only for what it is best at: `RequestValidator` (in `signature`).

API reference: https://www.twilio.com/docs/messaging/api/message-resource
Status callbacks: https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
Errors: https://www.twilio.com/docs/api/errors
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from django.conf import settings
from yarl import URL

from carebell.core.vocab import Channel
from carebell.providers.base import (
    Limits,
    OutgoingMessage,
    Provider,
    ProviderError,
    SendResult,
    StatusUpdate,
    Unsupported,
    parse_retry_after,
)
from carebell.providers.twilio.signature import verify_twilio_signature

log = logging.getLogger("carebell.providers.twilio")

API_VERSION = "2010-04-01"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

# --- Twilio's vocabulary → carebell's -------------------------------------------

#: MessageStatus in a status callback → carebell status. Intermediate states
#: (queued, accepted, scheduled, sending) carry nothing to record; 'read' only
#: exists on channels with read receipts and implies delivery.
CALLBACK_STATUS = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    # We never schedule through Twilio, so a cancel is someone else's action.
    "canceled": "failed",
}

#: Message resource `status` right after creation (or on lookup) → SendResult.status.
RESOURCE_STATUS = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}

#: The recipient replied STOP: opt the number out (SPEC §3.5).
OPT_OUT_CODES = frozenset({21610})

#: Retrying the same message to the same number cannot succeed. 30003-30008 follow
#: VA Notify's production policy (the carrier refused this message); Twilio's docs
#: note 30003 can be a phone switched off, but Twilio does not retry either and a
#: reminder resent hours later is worse than one not sent.
PERMANENT_CODES = frozenset(
    {
        21211,  # invalid 'To' number
        21408,  # region not enabled for this account
        21610,  # unsubscribed recipient
        21612,  # cannot route between these numbers
        21614,  # 'To' is not a mobile number
        21635,  # 'To' is a landline
        30003,  # unreachable handset
        30004,  # message blocked
        30005,  # unknown handset
        30006,  # landline or unreachable carrier
        30007,  # carrier filtering
        30008,  # unknown error at the carrier
        30034,  # unregistered 10DLC sender
        21214,  # calls: 'To' cannot be reached
        21215,  # calls: geo permissions do not allow this destination
        21217,  # calls: 'To' does not appear to be a valid number
    }
)

#: Worth retrying later: rate limits, queue overflow, Twilio-side trouble, and
#: credential errors (20003) — a misconfigured token must not fail every message
#: permanently; operators fix it and the queue drains.
TRANSIENT_CODES = frozenset({20003, 20429, 30001, 30500})


def classify(
    http_status: int, code: int | None, message: str, retry_after: float | None = None
) -> ProviderError:
    """The one place Twilio failures are sorted into permanent and transient."""
    text = message or f"HTTP {http_status}"
    code_text = str(code) if code else f"http_{http_status}"
    if code in PERMANENT_CODES:
        return ProviderError(text, permanent=True, code=code_text, opt_out=code in OPT_OUT_CODES)
    transient = code in TRANSIENT_CODES or http_status in (429, 503) or http_status >= 500
    if transient or http_status in (401, 403, 408):
        return ProviderError(text, permanent=False, code=code_text, retry_after=retry_after)
    return ProviderError(text, permanent=http_status >= 400, code=code_text)


# --- configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    sender: str = ""
    messaging_service_sid: str = ""
    base_url: str = "https://api.twilio.com"
    messages_per_second: float = 1.0

    @classmethod
    def from_settings(cls) -> TwilioConfig:
        return cls(
            account_sid=getattr(settings, "TWILIO_ACCOUNT_SID", ""),
            auth_token=getattr(settings, "TWILIO_AUTH_TOKEN", ""),
            sender=getattr(settings, "TWILIO_FROM", ""),
            messaging_service_sid=getattr(settings, "TWILIO_MESSAGING_SERVICE_SID", ""),
            base_url=getattr(settings, "TWILIO_BASE_URL", "https://api.twilio.com").rstrip("/"),
            messages_per_second=float(getattr(settings, "TWILIO_MESSAGES_PER_SECOND", 1.0)),
        )

    @property
    def account_url(self) -> str:
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}"


@dataclass
class InboundSms:
    """An incoming SMS as Twilio posts it to the inbound webhook."""

    message_sid: str
    account_sid: str
    from_number: str
    to_number: str
    body: str
    messaging_service_sid: str = ""
    num_segments: int = 1
    media: list[tuple[str, str]] = field(default_factory=list)


#: Twilio sends at most 10 media items with one message; a NumMedia above that is
#: none of Twilio's, and reading that many fields would hold a worker for nothing.
MAX_MEDIA = 10


def parse_inbound(data: Mapping[str, Any]) -> InboundSms:
    """Twilio's inbound-message form fields as an InboundSms. Unknown fields are
    ignored (Twilio adds fields without notice), and so is media past MAX_MEDIA."""
    media_count = min(max(_int(data.get("NumMedia"), 0), 0), MAX_MEDIA)
    media = [
        (data.get(f"MediaUrl{i}", ""), data.get(f"MediaContentType{i}", ""))
        for i in range(media_count)
    ]
    return InboundSms(
        message_sid=data.get("MessageSid") or data.get("SmsMessageSid") or "",
        account_sid=data.get("AccountSid", ""),
        from_number=data.get("From", ""),
        to_number=data.get("To", ""),
        body=data.get("Body", ""),
        messaging_service_sid=data.get("MessagingServiceSid", ""),
        num_segments=_int(data.get("NumSegments"), 1),
        media=media,
    )


def parse_message_status(
    data: Mapping[str, Any], attempt_id: int | None = None
) -> StatusUpdate | None:
    """A Messages status callback as a StatusUpdate (None for intermediate states)."""
    raw = data.get("MessageStatus", "")
    status = CALLBACK_STATUS.get(raw)
    sid = data.get("MessageSid") or data.get("SmsSid") or ""
    if status is None or not sid:
        return None
    code = _int(data.get("ErrorCode"), 0)
    failed = status in ("undelivered", "failed")
    error = classify(400, code, "") if code else None
    return StatusUpdate(
        provider_message_id=sid,
        status=status,
        attempt_id=attempt_id,
        error_code=str(code or ""),
        permanent=failed and (error is None or error.permanent),
        opt_out=bool(error and error.opt_out),
        event_id=f"{sid}:{raw}",
        provider_status=raw,
    )


# --- the provider ----------------------------------------------------------------


class TwilioSmsProvider(Provider):
    name = "twilio"
    # 1600 characters is Twilio's hard limit; 10 segments its delivery recommendation.
    # Twilio documents no idempotency for message creation: the token header is sent
    # (the loopback sim honours it), but an attempt whose outcome is unknown is
    # settled by lookup (by sid, else a search of what went to the number) or by its
    # status callback. Twilio sets DateSent, which the search filters on, only when
    # a message leaves its queue: finding nothing proves little for a few minutes.
    limits = Limits(
        channels=frozenset({Channel.SMS}),
        max_body_chars=1600,
        max_segments=10,
        supports_idempotency=False,
        supports_lookup=True,
        lookup_settles_after=300.0,
    )

    #: The REST resource created per message, and how its status reads in carebell.
    resource_name = "Messages"
    resource_status = RESOURCE_STATUS

    def __init__(self, config: TwilioConfig | None = None) -> None:
        self.config = config or TwilioConfig.from_settings()
        self.limits = dataclasses.replace(
            type(self).limits, messages_per_second=self.config.messages_per_second
        )
        self.auth_headers = {
            "Authorization": basic_auth(self.config.account_sid, self.config.auth_token),
            "Accept": "application/json",
        }
        # Built once: aiohttp parses a str URL and encodes a dict form on every call,
        # which cost more CPU than the rest of a send (profiled at 1,500 sends/s).
        self._create_url = URL(f"{self.config.account_url}/{self.resource_name}.json")
        self._post_headers = {**self.auth_headers, "Content-Type": FORM_CONTENT_TYPE}

    async def send_one(
        self, session: aiohttp.ClientSession, message: OutgoingMessage
    ) -> SendResult:
        headers = self._post_headers
        if message.idempotency_key:
            headers = {**headers, IDEMPOTENCY_HEADER: message.idempotency_key}
        body = encode_form(self.message_form(message))
        async with session.post(self._create_url, data=body, headers=headers) as response:
            resource = await self._read(response)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("provider.accepted", extra={"ids": self._log_ids(message, resource)})
        return self.result_from_resource(message.attempt_id, resource)

    def message_form(self, message: OutgoingMessage) -> dict[str, str]:
        """The Messages.json form fields for `message`."""
        form = {"To": message.to, "Body": message.body}
        sender = message.sender or self.config.messaging_service_sid or self.config.sender
        if not sender:
            raise ProviderError("no sender configured", permanent=False, code="no_sender")
        # A Messaging Service id (MG…) goes in its own field; Twilio picks the number.
        form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        return form

    def result_from_resource(self, attempt_id: int, resource: Mapping[str, Any]) -> SendResult:
        """A SendResult from the resource Twilio returned (on create or lookup)."""
        status = self.resource_status.get(str(resource.get("status", "")), "queued")
        code = resource.get("error_code")
        error = classify(400, int(code), resource.get("error_message") or "") if code else None
        return SendResult(
            attempt_id=attempt_id,
            accepted=True,
            provider_message_id=str(resource.get("sid", "")),
            status=status,
            error_code=str(code or ""),
            error_message=str(resource.get("error_message") or ""),
            permanent=bool(error and error.permanent),
            opt_out=bool(error and error.opt_out),
        )

    async def lookup(
        self,
        session: aiohttp.ClientSession | None,
        *,
        provider_message_id: str = "",
        idempotency_key: str = "",
        message: OutgoingMessage | None = None,
        since: dt.datetime | None = None,
    ) -> SendResult | None:
        if provider_message_id:
            url = f"{self.config.account_url}/{self.resource_name}/{provider_message_id}.json"
            async with (
                self.client_session(session) as active,
                active.get(url, headers=self.auth_headers) as response,
            ):
                if response.status == 404:
                    return None
                resource = await self._read(response)
            return self.result_from_resource(0, resource)
        if message is None or since is None:
            # Twilio's Messages list filters by To/From/DateSent only.
            raise Unsupported("twilio lookup by idempotency key")
        return await self.find_sent(session, message, since)

    async def find_sent(
        self, session: aiohttp.ClientSession | None, message: OutgoingMessage, since: dt.datetime
    ) -> SendResult | None:
        """The message this attempt created, searched among what the account sent to
        the number since the attempt started (Twilio keeps no idempotency key): the
        Messages list filtered by To and DateSent>= (a GMT date), matched by body.
        None when nothing there is this message; raises when the answer is unclear
        (more pages than one, or no answer)."""
        url = f"{self.config.account_url}/{self.resource_name}.json"
        async with (
            self.client_session(session) as active,
            active.get(url, params=search_params(message, since), headers=self.auth_headers) as got,
        ):
            page = await self._read(got)
        found = sent_match(page.get(self.resource_name.lower()) or [], message, since)
        if found is not None:
            return self.result_from_resource(0, found)
        if page.get("next_page_uri"):
            raise ProviderError("too many messages to search", permanent=False, code="lookup")
        return None

    def parse_status(
        self, data: Mapping[str, Any], attempt_id: int | None = None
    ) -> StatusUpdate | None:
        return parse_message_status(data, attempt_id)

    def verify_signature(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        return verify_twilio_signature(self.config.auth_token, url, params, headers)

    @staticmethod
    async def _read(response: aiohttp.ClientResponse) -> dict[str, Any]:
        """The JSON body of a Twilio answer, or a classified ProviderError."""
        try:
            # json.loads reads UTF-8/16/32 bytes itself; cheaper than response.json().
            payload = json.loads(await response.read())
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {}
        if response.status >= 400:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            code = _int(payload.get("code"), 0) or None
            raise classify(response.status, code, str(payload.get("message", "")), retry_after)
        return payload

    def _log_ids(self, message: OutgoingMessage, resource: Mapping[str, Any]) -> dict:
        return {
            "provider": self.name,
            "attempt_id": message.attempt_id,
            "site_id": message.site_id,
            "provider_message_id": resource.get("sid"),
        }


#: Clocks differ: a message Twilio dated a little before the attempt started is
#: still a candidate.
CLOCK_SKEW = dt.timedelta(minutes=5)
SEARCH_PAGE_SIZE = 100


def search_params(message: OutgoingMessage, since: dt.datetime) -> dict[str, str]:
    """The Messages list query for what went to `message.to` since `since`: Twilio
    reads `DateSent>=YYYY-MM-DD` (a GMT date) as the key `DateSent>` and its value.
    https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
    """
    day = (since - CLOCK_SKEW).astimezone(dt.UTC).date()
    return {"To": message.to, "DateSent>": day.isoformat(), "PageSize": str(SEARCH_PAGE_SIZE)}


def sent_match(
    resources: list[Mapping[str, Any]], message: OutgoingMessage, since: dt.datetime
) -> Mapping[str, Any] | None:
    """The earliest outbound resource to `message.to`, created since `since`, whose
    body is `message.body` — compared by letters and digits, since Twilio's smart
    encoding may swap quotes and dashes for plainer ones."""
    wanted = _letters(message.body)
    earliest = since - CLOCK_SKEW
    matches = [
        r
        for r in resources
        if str(r.get("direction", "outbound")).startswith("outbound")
        and r.get("to") == message.to
        and _letters(str(r.get("body") or "")) == wanted
        and (_created(r) or earliest) >= earliest
    ]
    return min(matches, key=lambda r: _created(r) or earliest, default=None)


def _letters(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def _created(resource: Mapping[str, Any]) -> dt.datetime | None:
    try:
        created = parsedate_to_datetime(str(resource.get("date_created") or ""))
    except (TypeError, ValueError):
        return None
    return created if created.tzinfo else created.replace(tzinfo=dt.UTC)


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
#: Characters urllib's quote_plus leaves as they are.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


class _Escapes(dict):
    """quote_plus of one character, computed once per character seen."""

    def __missing__(self, char: str) -> str:
        escaped = self[char] = quote_plus(char)
        return escaped


_ESCAPES = _Escapes()


def quote_form_value(value: str) -> str:
    """Exactly `urllib.parse.quote_plus(value)`, about five times faster on an SMS
    body: one `str.replace` per distinct character to escape instead of a Python
    step per byte. '%' goes first and ' ' last, so no escape is escaped again."""
    unsafe = set(value).difference(_UNRESERVED)
    if not unsafe:
        return value
    if "%" in unsafe:
        value = value.replace("%", "%25")
        unsafe.discard("%")
    space = " " in unsafe
    unsafe.discard(" ")
    for char in unsafe:
        value = value.replace(char, _ESCAPES[char])
    return value.replace(" ", "+") if space else value


class _QuotedKeys(dict):
    """Form field names, quoted once: a form has the same few on every message."""

    def __missing__(self, key: str) -> str:
        quoted = quote_form_value(key)
        if len(self) < 64:
            self[key] = quoted
        return quoted


_QUOTED_KEYS = _QuotedKeys()


def encode_form(form: Mapping[str, str]) -> bytes:
    """An application/x-www-form-urlencoded body, as `urllib.parse.urlencode` writes it."""
    keys = _QUOTED_KEYS
    return "&".join(f"{keys[k]}={quote_form_value(v)}" for k, v in form.items()).encode("ascii")


def basic_auth(user: str, password: str) -> str:
    """An HTTP Basic Authorization header value."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
