"""What the email providers share: building the Django message with its text and
HTML parts and the unsubscribe headers, and sending a batch over one connection."""

from __future__ import annotations

import asyncio

import aiohttp
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, make_msgid

from carebell.providers.base import OutgoingMessage, Provider, ProviderError, SendResult


class ConnectionEmailProvider(Provider):
    """Email through a blocking Django email connection (SMTP, an email service's
    HTTP API): the batch runs in a worker thread over one connection, so keep-alive
    and authentication are paid once per batch, not per message.

    Hooks: `open_connection()`, `send_sync(connection, message)`, and
    `classify(error, connection)` for the errors listed in `transport_errors`."""

    transport_errors: tuple[type[Exception], ...] = (OSError,)

    async def send_batch(
        self, session: aiohttp.ClientSession | None, messages: list[OutgoingMessage]
    ) -> list[SendResult]:
        if not messages:
            return []
        return await asyncio.to_thread(self.send_batch_sync, messages)

    def send_batch_sync(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        """Send `messages` over one reused connection; one result each, in order."""
        connection = self.open_connection()
        try:
            return [self._send_safely_sync(connection, message) for message in messages]
        finally:
            connection.close()

    def _send_safely_sync(self, connection, message: OutgoingMessage) -> SendResult:
        try:
            self.check_limits(message)
            return self.send_sync(connection, message)
        except ProviderError as error:
            return SendResult.from_error(message.attempt_id, error)
        except self.transport_errors as error:
            return SendResult.from_error(message.attempt_id, self.classify(error, connection))

    def open_connection(self):
        raise NotImplementedError

    def send_sync(self, connection, message: OutgoingMessage) -> SendResult:
        raise NotImplementedError

    def classify(self, error: Exception, connection) -> ProviderError:
        raise NotImplementedError


#: Keys of OutgoingMessage.headers that carry carebell data, not literal headers.
UNSUBSCRIBE_URL = "unsubscribe_url"
UNSUBSCRIBE_MAILTO = "unsubscribe_mailto"
_INTERNAL = frozenset({UNSUBSCRIBE_URL, UNSUBSCRIBE_MAILTO})


def unsubscribe_headers(message: OutgoingMessage) -> dict[str, str]:
    """List-Unsubscribe (RFC 2369) with one-click List-Unsubscribe-Post (RFC 8058)
    when the message has an unsubscribe link. RFC 8058 requires the https URI;
    the mailto one is for clients that only know mail."""
    url = message.headers.get(UNSUBSCRIBE_URL, "")
    if not url:
        return {}
    mailto = message.headers.get(UNSUBSCRIBE_MAILTO) or getattr(
        settings, "EMAIL_UNSUBSCRIBE_MAILTO", ""
    )
    targets = [f"<mailto:{mailto.removeprefix('mailto:')}>"] if mailto else []
    targets.append(f"<{url}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def build_email(message: OutgoingMessage, connection=None) -> EmailMultiAlternatives:
    """The Django email for `message`: plain text, HTML alternative when given, a
    Message-ID we choose (it becomes the provider id) and the extra headers."""
    headers = {k: v for k, v in message.headers.items() if k not in _INTERNAL}
    headers.update(unsubscribe_headers(message))
    headers.setdefault("Message-ID", make_msgid(domain=_domain(message.sender)))
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body,
        from_email=message.sender or settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        headers=headers,
        connection=connection,
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    return email


def _domain(sender: str) -> str | None:
    address = sender or getattr(settings, "DEFAULT_FROM_EMAIL", "")
    return address.rpartition("@")[2].strip(">") or None
