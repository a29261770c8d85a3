"""The default provider: writes one log line per message and sends nothing.

Without configuration nothing real is ever contacted (SPEC §12). The line carries
ids only — never the number, address, name or body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from carebell.core.vocab import Channel
from carebell.providers.base import Limits, OutgoingMessage, Provider, SendResult

log = logging.getLogger("carebell.providers.console")


class ConsoleProvider(Provider):
    name = "console"
    limits = Limits(channels=frozenset(Channel), supports_idempotency=True, supports_lookup=True)

    async def send_one(
        self, session: aiohttp.ClientSession, message: OutgoingMessage
    ) -> SendResult:
        ids = {
            "attempt_id": message.attempt_id,
            "site_id": message.site_id,
            "channel": str(message.channel),
            "kind": message.kind,
        }
        log.info("provider.console", extra={"ids": ids})
        return SendResult(message.attempt_id, True, console_id(message.attempt_id), "sent")

    async def send_batch(
        self, session: aiohttp.ClientSession | None, messages: list[OutgoingMessage]
    ) -> list[SendResult]:
        # No network: skip opening an HTTP session.
        return [await self._send_safely(session, m) for m in messages]  # type: ignore[arg-type]

    async def lookup(
        self,
        session: aiohttp.ClientSession | None,
        *,
        provider_message_id: str = "",
        idempotency_key: str = "",
        **_attempt: Any,  # found by id or key alone
    ) -> SendResult | None:
        # Nothing left the machine, so resending is always harmless: "no record".
        return None

    def verify_signature(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        return False  # nothing calls back to a console; never trust a request


def console_id(attempt_id: int) -> str:
    """Deterministic, so a resend of the same attempt gets the same id."""
    return f"console-{attempt_id}"
