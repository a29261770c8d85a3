"""The `sim` providers: carebell's side of the simulated phone and mailbox
(`carebell.simulator.server`). Chosen with CAREBELL_SMS_PROVIDER / _EMAIL_ / _VOICE_ = sim.

SMS reuses the Twilio provider unchanged against SIM_URL (the sim speaks Twilio's
Messages API); email and calls use the sim's own small JSON endpoints. The sim
honours idempotency keys, so a resend after a crash creates no duplicate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import aiohttp
from django.conf import settings

from carebell.core.vocab import Channel
from carebell.providers.base import (
    Limits,
    OutgoingMessage,
    Provider,
    SendResult,
    StatusUpdate,
)
from carebell.providers.twilio.signature import verify_twilio_signature
from carebell.providers.twilio.sms import (
    TwilioConfig,
    TwilioSmsProvider,
    parse_message_status,
)
from carebell.providers.twilio.voice import TwilioVoiceProvider, parse_call_status
from carebell.simulator.server import SIM_ACCOUNT_SID


def sim_url() -> str:
    return getattr(settings, "SIM_URL", "http://127.0.0.1:8025").rstrip("/")


def sim_token() -> str:
    """The secret the sim signs callbacks and patient replies with (CAREBELL_SIM_AUTH_TOKEN,
    or the one generated into the data dir). Empty while the simulator is off, and an
    empty secret verifies nothing."""
    return getattr(settings, "SIM_AUTH_TOKEN", "")


def sim_config() -> TwilioConfig:
    return TwilioConfig(
        account_sid=SIM_ACCOUNT_SID,
        auth_token=sim_token(),
        sender=getattr(settings, "TWILIO_FROM", "") or "+15005550006",
        base_url=sim_url(),
        messages_per_second=float(getattr(settings, "SIM_MESSAGES_PER_SECOND", 1000.0)),
    )


class SimSmsProvider(TwilioSmsProvider):
    name = "sim"
    limits = dataclasses.replace(TwilioSmsProvider.limits, supports_idempotency=True)

    def __init__(self, config: TwilioConfig | None = None) -> None:
        super().__init__(config or sim_config())

    async def lookup(
        self,
        session: aiohttp.ClientSession | None,
        *,
        provider_message_id: str = "",
        idempotency_key: str = "",
        **_attempt: Any,  # found by id or key alone
    ) -> SendResult | None:
        if provider_message_id:
            return await super().lookup(session, provider_message_id=provider_message_id)
        url = f"{self.config.account_url}/Messages.json"
        params = {"IdempotencyKey": idempotency_key}
        async with (
            self.client_session(session) as active,
            active.get(url, params=params, headers=self.auth_headers) as response,
        ):
            found = (await self._read(response)).get("messages", [])
        return self.result_from_resource(0, found[0]) if found else None


class SimJsonProvider(Provider):
    """Email and calls on the sim's own JSON endpoints."""

    endpoint = ""
    limits = Limits(channels=frozenset(), supports_idempotency=True, supports_lookup=True)

    def __init__(self, base_url: str = "", auth_token: str = "") -> None:
        self.base_url = (base_url or sim_url()).rstrip("/")
        self.auth_token = auth_token or sim_token()

    async def send_one(
        self, session: aiohttp.ClientSession, message: OutgoingMessage
    ) -> SendResult:
        url = f"{self.base_url}/sim/api/{self.endpoint}"
        async with session.post(url, json=self.payload(message)) as response:
            resource = await TwilioSmsProvider._read(response)
        return self.result(message.attempt_id, resource)

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        return {
            "to": message.to,
            "sender": message.sender,
            "body": message.body,
            "language": message.language,
            "idempotency_key": message.idempotency_key,
            "status_callback": message.status_callback_url,
        }

    @staticmethod
    def result(attempt_id: int, resource: Mapping[str, Any]) -> SendResult:
        status = "sent" if resource.get("status") == "sent" else "queued"
        return SendResult(attempt_id, True, str(resource.get("sid", "")), status)

    async def lookup(
        self,
        session: aiohttp.ClientSession | None,
        *,
        provider_message_id: str = "",
        idempotency_key: str = "",
        **_attempt: Any,  # found by id or key alone
    ) -> SendResult | None:
        path = f"messages/{provider_message_id}" if provider_message_id else "messages"
        params = {} if provider_message_id else {"idempotency_key": idempotency_key}
        async with (
            self.client_session(session) as active,
            active.get(f"{self.base_url}/sim/api/{path}", params=params) as response,
        ):
            if response.status == 404:
                return None
            payload = await TwilioSmsProvider._read(response)
        found = payload.get("messages", [payload])
        return self.result(0, found[0]) if found else None

    def verify_signature(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        return verify_twilio_signature(self.auth_token, url, params, headers)


class SimEmailProvider(SimJsonProvider):
    name = "sim_email"
    endpoint = "emails"
    limits = dataclasses.replace(SimJsonProvider.limits, channels=frozenset({Channel.EMAIL}))

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        extra = {"subject": message.subject, "html": message.html, "headers": message.headers}
        return {**super().payload(message), **extra}

    def parse_status(
        self, data: Mapping[str, Any], attempt_id: int | None = None
    ) -> StatusUpdate | None:
        # The sim reports email like an SMS status callback (MessageSid, MessageStatus).
        return parse_message_status(data, attempt_id)


class SimVoiceProvider(SimJsonProvider):
    name = "sim_voice"
    endpoint = "calls"
    limits = dataclasses.replace(SimJsonProvider.limits, channels=frozenset({Channel.CALL}))

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        script = TwilioVoiceProvider.script_for(message)
        return {**super().payload(message), "gather_url": script.gather_url}

    def parse_status(
        self, data: Mapping[str, Any], attempt_id: int | None = None
    ) -> StatusUpdate | None:
        return parse_call_status(data, attempt_id)
