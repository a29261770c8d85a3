"""Email over SMTP through Django's EmailBackend, one connection per batch.

smtplib is blocking, so `send_batch` runs the whole batch in a worker thread and
reuses one SMTP connection for it (connecting and authenticating per message
costs more than sending). A dropped connection is reopened for the next message.
"""

from __future__ import annotations

import logging
import smtplib

from django.core.mail import get_connection

from carebell.core.vocab import Channel
from carebell.providers.base import (
    Limits,
    OutgoingMessage,
    ProviderError,
    SendResult,
)
from carebell.providers.email_common import ConnectionEmailProvider, build_email

log = logging.getLogger("carebell.providers.smtp")

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def classify_smtp(error: Exception) -> ProviderError:
    """The one place SMTP failures are sorted: 5xx replies are permanent, 4xx and
    lost connections transient (RFC 5321 §4.2.1). A refused login is transient —
    a configuration problem an operator fixes, not the recipient's fault."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code = min((reply[0] for reply in error.recipients.values()), default=550)
        return ProviderError("recipient refused", permanent=code >= 500, code=f"smtp_{code}")
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return ProviderError("authentication failed", permanent=False, code="smtp_auth")
    if isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
        return ProviderError(f"SMTP {code}", permanent=code >= 500, code=f"smtp_{code}")
    return ProviderError(type(error).__name__, permanent=False, code="network")


class SmtpProvider(ConnectionEmailProvider):
    name = "smtp"
    limits = Limits(channels=frozenset({Channel.EMAIL}), max_body_chars=1_000_000)

    def __init__(self, **connection_options) -> None:
        # Host, port, user, password, TLS and timeout default to Django's EMAIL_*
        # settings (set from CAREBELL_SMTP_* in carebell.settings).
        self.connection_options = connection_options

    transport_errors = (smtplib.SMTPException, OSError)

    def open_connection(self):
        return get_connection(SMTP_BACKEND, fail_silently=False, **self.connection_options)

    def classify(self, error: Exception, connection) -> ProviderError:
        if not isinstance(error, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
            connection.close()  # reopened for the next message
        return classify_smtp(error)

    def send_sync(self, connection, message: OutgoingMessage) -> SendResult:
        email = build_email(message, connection)
        connection.open()
        connection.send_messages([email])
        message_id = email.extra_headers["Message-ID"]
        ids = {"provider": self.name, "attempt_id": message.attempt_id, "site_id": message.site_id}
        log.debug("provider.accepted", extra={"ids": ids})
        return SendResult(message.attempt_id, True, message_id, "sent")
