"""The one interface every delivery provider implements.

A provider *declares* what it can do (`Limits`: channels, body length, segments,
rate, idempotency) and fills in hooks; the base class runs the template method
(`send_batch`), applies the declared limits once, and turns every failure into a
`SendResult` so a message is never lost between "claimed" and "recorded".

Shape borrowed from django-anymail (base backend + hooks, "unsupported" is an error)
and Apprise (limits as data); one exception type with a `permanent` flag as in
healthchecks' transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import aiohttp
from django.utils import timezone

from carebell.core.segments import count_segments
from carebell.core.vocab import Channel

log = logging.getLogger("carebell.providers")

#: Words a SendResult may carry (the provider's view right after the send call).
SEND_STATUSES = ("queued", "sent", "delivered", "failed")
#: Words a StatusUpdate carries: carebell's outbox statuses a provider can report.
UPDATE_STATUSES = ("sent", "delivered", "undelivered", "failed")


@dataclass
class OutgoingMessage:
    """One attempt to deliver one message, as the dispatcher hands it over.

    `attempt_id` is the id of the attempt row saved *before* the call; it travels in
    the status-callback URL and is the provider-side idempotency key's basis, so a
    crash between "provider accepted" and "we committed" can be reconciled.
    """

    attempt_id: int
    channel: Channel | str
    to: str
    sender: str
    body: str
    subject: str = ""
    html: str = ""
    language: str = "en"
    status_callback_url: str = ""
    idempotency_key: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    site_id: int = 0
    kind: str = ""


@dataclass
class SendResult:
    """What became of one `OutgoingMessage`.

    `accepted` means the provider took responsibility for the message (a
    `provider_message_id` is then set). When not accepted, `permanent` says whether
    retrying can ever help and `retry_after` (seconds) how long to wait first;
    `opt_out` asks carebell to opt the recipient out (e.g. Twilio 21610).
    `unknown` means no answer came back although the request may have reached the
    provider (a read timeout, a connection dropped after the request was written):
    the provider may have the message, so it is not a failure to resend but an
    attempt to settle first (lookup, the same idempotency key, its status callback).
    """

    attempt_id: int
    accepted: bool
    provider_message_id: str = ""
    status: str = "queued"
    error_code: str = ""
    error_message: str = ""
    permanent: bool = False
    retry_after: float | None = None
    opt_out: bool = False
    unknown: bool = False

    @classmethod
    def from_error(cls, attempt_id: int, error: ProviderError) -> SendResult:
        """The result for an attempt that failed with `error`."""
        return cls(
            attempt_id=attempt_id,
            accepted=False,
            status="failed",
            error_code=error.code,
            error_message=error.message,
            permanent=error.permanent,
            retry_after=error.retry_after,
            opt_out=error.opt_out,
            unknown=error.unknown,
        )


@dataclass
class StatusUpdate:
    """A delivery report from a provider, in carebell's words.

    `status` is one of UPDATE_STATUSES. `event_id` identifies the report itself so a
    retried or duplicated callback can be recognised and ignored; `attempt_id` is
    known when the callback URL carried it.
    """

    provider_message_id: str
    status: str
    attempt_id: int | None = None
    error_code: str = ""
    permanent: bool = False
    opt_out: bool = False
    event_id: str = ""
    provider_status: str = ""


class ProviderError(Exception):
    """The one failure type of the provider layer.

    `permanent` failures are never retried (invalid number, unsubscribed recipient);
    transient ones are retried with backoff, not before `retry_after` seconds when
    the provider said so (HTTP 429/503 Retry-After). `unknown`: the request may have
    reached the provider, which did not answer (see `SendResult.unknown`).
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str = "",
        retry_after: float | None = None,
        opt_out: bool = False,
        unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after
        self.opt_out = opt_out
        self.unknown = unknown


class Unsupported(ProviderError):
    """The provider cannot do what was asked (a channel, a lookup, an attachment).

    Raised rather than silently dropping the feature; always permanent.
    """

    def __init__(self, feature: str) -> None:
        super().__init__(f"unsupported: {feature}", permanent=True, code="unsupported")


@dataclass(frozen=True)
class Limits:
    """What a provider can do, declared as data and applied once by the base class."""

    channels: frozenset[Channel]
    max_body_chars: int | None = None
    max_segments: int | None = None
    #: Per sender; enforced by the dispatcher across all workers, not here.
    messages_per_second: float | None = None
    #: A resend under the same idempotency key is recognised: no second message.
    supports_idempotency: bool = False
    supports_lookup: bool = False
    #: Seconds after an attempt started before a lookup that finds nothing proves the
    #: provider never got it (for providers whose records show up late).
    lookup_settles_after: float = 0.0
    #: Requests in flight at once within one `send_batch`.
    max_concurrency: int = 32


class Provider:
    """Base class: declare `name` and `limits`, then fill in the hooks.

    Hooks: `send_one` (required), `parse_status`, `verify_signature`, `lookup`.
    Every hook a provider does not implement raises `Unsupported`.
    """

    name: ClassVar[str] = "base"
    limits: ClassVar[Limits] = Limits(channels=frozenset())

    async def send_batch(
        self, session: aiohttp.ClientSession | None, messages: list[OutgoingMessage]
    ) -> list[SendResult]:
        """Send `messages` concurrently (at most `limits.max_concurrency` at once).

        Returns one SendResult per message, in the same order. Never raises for a
        single message's failure: every exception becomes a failed SendResult.
        """
        if not messages:
            return []
        results: list[SendResult] = [None] * len(messages)  # type: ignore[list-item]
        queue = iter(enumerate(messages))

        # A few senders taking the next message in turn rather than one task per
        # message behind a semaphore: the same requests in flight, less CPU per send.
        async def sender(active: aiohttp.ClientSession) -> None:
            for index, message in queue:
                results[index] = await self._send_safely(active, message)

        senders = min(self.limits.max_concurrency, len(messages))
        async with self.client_session(session) as active:
            await asyncio.gather(*(sender(active) for _ in range(senders)))
        return results

    async def send_one(
        self, session: aiohttp.ClientSession, message: OutgoingMessage
    ) -> SendResult:
        """Hook: send one message; raise ProviderError on failure."""
        raise Unsupported(f"{self.name} sending")

    def parse_status(
        self, data: Mapping[str, Any], attempt_id: int | None = None
    ) -> StatusUpdate | None:
        """Hook: a provider's delivery report as a StatusUpdate, or None when the
        report carries nothing carebell records (e.g. an intermediate 'sending')."""
        raise Unsupported(f"{self.name} status reports")

    def verify_signature(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        """Hook: True only when the webhook request really comes from the provider.

        `url` is the full URL as the provider called it, `params` the form fields
        (a dict, a QueryDict/MultiDict, or a list of pairs) or the raw body text.
        """
        raise Unsupported(f"{self.name} webhook signatures")

    async def lookup(
        self,
        session: aiohttp.ClientSession | None,
        *,
        provider_message_id: str = "",
        idempotency_key: str = "",
        message: OutgoingMessage | None = None,
        since: dt.datetime | None = None,
    ) -> SendResult | None:
        """Hook: what the provider knows of an earlier attempt, or None if it has no
        record of it. Raises (ProviderError, a network error) when it cannot say.

        Used to settle an attempt whose outcome is unknown (a timeout, a worker that
        died mid-send): it is resent only when the provider has no record of it. The
        attempt is named by its provider id when one is known, else by its
        idempotency key; `message` (the attempt as it was sent) and `since` (when
        it started) serve providers that can only search what they sent.
        """
        raise Unsupported(f"{self.name} lookup")

    def check_limits(self, message: OutgoingMessage) -> None:
        """Raise a permanent ProviderError when `message` exceeds the declared limits."""
        if Channel(message.channel) not in self.limits.channels:
            raise Unsupported(f"{self.name} channel {message.channel}")
        limit = self.limits.max_body_chars
        if limit is not None and len(message.body) > limit:
            raise ProviderError(
                f"body longer than {limit} characters", permanent=True, code="body_too_long"
            )
        if self.limits.max_segments is not None:
            self._check_segments(message.body, self.limits.max_segments)

    @staticmethod
    def _check_segments(body: str, limit: int) -> None:
        segments = count_sms_segments(body)
        if segments > limit:
            raise ProviderError(
                f"body needs {segments} segments, limit {limit}",
                permanent=True,
                code="too_many_segments",
            )

    @contextlib.asynccontextmanager
    async def client_session(
        self, session: aiohttp.ClientSession | None
    ) -> AsyncIterator[aiohttp.ClientSession]:
        """The caller's session (kept open, for keep-alive across batches) or a
        short-lived one for this call."""
        if session is not None:
            yield session
            return
        async with aiohttp.ClientSession(timeout=DEFAULT_TIMEOUT) as own:
            yield own

    async def _send_safely(
        self, session: aiohttp.ClientSession, message: OutgoingMessage
    ) -> SendResult:
        try:
            self.check_limits(message)
            return await self.send_one(session, message)
        except ProviderError as error:
            return SendResult.from_error(message.attempt_id, error)
        except (aiohttp.ClientError, TimeoutError) as error:
            # Transient; and unless the request surely never left, its outcome is
            # unknown: the dispatcher settles it before anything is resent.
            return SendResult.from_error(message.attempt_id, network_error(error))
        except Exception as error:
            log.exception(
                "provider.unexpected_error",
                extra={"ids": {"provider": self.name, "attempt_id": message.attempt_id}},
            )
            return SendResult.from_error(
                message.attempt_id,
                ProviderError(type(error).__name__, permanent=False, code="internal"),
            )


DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


#: Transport failures that happen before a request is written: the provider cannot
#: have it (no connection, no address, no TLS, or the connection timed out).
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.InvalidURL,
)


def network_error(error: BaseException) -> ProviderError:
    """A transport failure: always transient. Its outcome is unknown — the provider
    may have the message — unless it is one of NOT_SENT_ERRORS: a read timeout, a
    reset or a server that closed the connection may come after the provider
    received the request and took the message."""
    unknown = not isinstance(error, NOT_SENT_ERRORS)
    code = "timeout" if isinstance(error, TimeoutError) and unknown else "network"
    return ProviderError(type(error).__name__, permanent=False, code=code, unknown=unknown)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from an HTTP Retry-After header (delta-seconds or HTTP-date,
    RFC 9110 §10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def count_sms_segments(body: str) -> int:
    """SMS segments of `body`, by carebell's one segment counter (SPEC §6.3)."""
    return count_segments(body)


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by case-insensitive name from any mapping ('' when absent)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""
