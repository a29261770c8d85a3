"""Which URLs an endpoint may have, and the resolver that keeps the worker to them.

A URL is checked when it is saved (a clear error for the staff member) and again at
every send, since what a name resolves to can change after it was saved: the
worker's HTTP client resolves names through `PublicResolver`, which refuses a name
if any of its addresses is not public, and the connection then goes only to the
addresses it checked (no second lookup an attacker could answer differently).
Literal IP addresses never reach a resolver and are checked by `literal_refusal`.
CAREBELL_WEBHOOKS_ALLOW_PRIVATE switches every address check off.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp import ThreadedResolver
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _

from carebell.core.event_delivery import Refusal, first_refusal, refusal_for

MAX_URL_LENGTH = 500

REFUSAL_TEXT = {
    Refusal.LOOPBACK: "a loopback address",
    Refusal.PRIVATE: "a private address",
    Refusal.LINK_LOCAL: "a link-local address",
    Refusal.NOT_PUBLIC: "an address that is not public",
}


class AddressRefused(OSError):
    """A name or address the worker may not connect to."""


def allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False))


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the seam tests replace for a public name)."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


def check_url(url: str) -> str:
    """`url` if an endpoint may have it, else a ValidationError saying why."""
    url = (url or "").strip()
    if not url:
        raise ValidationError(_("Enter the endpoint's URL."), code="required")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(
            _("The URL is too long (at most %(max)d characters).") % {"max": MAX_URL_LENGTH},
            code="url_too_long",
        )
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(
            _("Enter a full URL starting with https://, like https://example.org/hooks."),
            code="invalid",
        ) from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError(_("Put no user name or password in the URL."), code="credentials")
    if parts.scheme != "https" and not allow_private():
        raise ValidationError(_("The URL must start with https://."), code="not_https")
    if not allow_private():
        _check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    return url


def _check_host(host: str, port: int) -> None:
    if _is_literal(host):
        found = first_refusal([host])
    else:
        try:
            found = first_refusal(resolve(host, port))
        except (OSError, UnicodeError):
            raise ValidationError(
                _("%(host)s does not resolve to any address.") % {"host": host}, code="unresolved"
            ) from None
    if found is not None:
        address, refusal = found
        raise ValidationError(
            _("%(host)s is %(kind)s (%(address)s): carebell calls only public addresses.")
            % {"host": host, "kind": _(REFUSAL_TEXT[refusal]), "address": address},
            code="not_public",
        )


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def literal_refusal(url: str) -> str | None:
    """Why the worker may not call `url` when its host is an IP address, else None."""
    host = urlsplit(url).hostname or ""
    if allow_private() or not _is_literal(host):
        return None
    refusal = refusal_for(host)
    return None if refusal is None else f"refused: {host} is {REFUSAL_TEXT[refusal]}"


class PublicResolver(ThreadedResolver):
    """aiohttp's resolver, refusing a name with any address that is not public."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list:
        found = await super().resolve(host, port, family)
        if allow_private():
            return found
        refused = first_refusal([entry["host"] for entry in found])
        if refused is not None:
            _, refusal = refused
            raise AddressRefused(f"refused: {host} resolves to {REFUSAL_TEXT[refusal]}")
        return found
