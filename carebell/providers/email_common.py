"""What the email providers share: building the Django message with its text and
HTML parts and the unsubscribe headers."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, make_msgid

from carebell.providers.base import OutgoingMessage

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
